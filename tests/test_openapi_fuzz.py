"""schemathesis against okno's own OpenAPI document, in-process (ASGI), with a staff token.

Every operation of ``/openapi.json`` gets a few generated requests (valid and edge-case
values from its schema); the responses must never be a server error (5xx) and must never
break the schema the document promises (a 200 body that does not match its model, a
documented content type that is not what came back). Errors the document does not list
(400, 401, 403, 404, 409, 422 with a code) are fine: refusing bad input is the point.

Cost: ``OKNO_FUZZ_EXAMPLES`` (default 4) examples per operation and an overall time
budget ``OKNO_FUZZ_SECONDS`` (default 150 s) keep it to a couple of minutes in CI; raise
both for a deeper run locally.
"""

from __future__ import annotations

import os
import random
import re
import time
from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from fastapi.testclient import TestClient

from okno.app import create_app
from okno.settings import Settings
from tests.builders import Staff, customer_says, staff_token, widget_session

pytestmark = pytest.mark.slow

EXAMPLES = int(os.environ.get("OKNO_FUZZ_EXAMPLES", "4"))
BUDGET_SECONDS = float(os.environ.get("OKNO_FUZZ_SECONDS", "150"))
# Operations that would lock the fuzzing admin out mid-run (sign-out everywhere, a
# password or role change of some user, sign-in attempts counted toward a lockout): they
# have their own tests; random input there tests nothing the others do not.
SKIPPED = re.compile(
    r"^(POST|PUT|PATCH|DELETE) /api/v1/(users|auth|me|tokens)\b"
    r"|^(POST|PUT|PATCH|DELETE) /api/v1/(?!widget/|mobile/).*(password|sessions|revoke|totp)"
)


@pytest.fixture
def fuzz_client(settings: Settings, staff: Staff) -> Iterator[TestClient]:
    app = create_app(settings)
    with TestClient(app) as client:
        # something to find: a dialog with messages, so ids 1.. exist
        token = widget_session(client)["session_token"]
        customer_says(client, token, "Здравствуйте, вопрос по карте")
        yield client


def _checks() -> list[Any]:
    from schemathesis.checks import not_a_server_error
    from schemathesis.specs.openapi.checks import (
        content_type_conformance,
        response_schema_conformance,
    )

    return [not_a_server_error, response_schema_conformance, content_type_conformance]


def _httpx_files(files: Any) -> Any:
    """schemathesis builds multipart parts for ``requests``, which sends a non-file form
    field's number or boolean as text; httpx (the test client) wants text or bytes."""
    if not files:
        return files
    parts = []
    for name, value in files:
        if isinstance(value, tuple) and value[0] is None:
            field = value[1]
            if isinstance(field, bool):
                field = "true" if field else "false"
            elif not isinstance(field, str | bytes):
                field = str(field)
            value = (None, field, *value[2:])
        parts.append((name, value))
    return parts


def test_no_operation_answers_a_server_error_or_breaks_its_schema(
    fuzz_client: TestClient,
) -> None:
    from hypothesis import HealthCheck, Phase, given
    from hypothesis import settings as hsettings

    schema = schemathesis.openapi.from_dict(fuzz_client.app.openapi())  # type: ignore[attr-defined]
    auth = {"Authorization": f"Bearer {staff_token(fuzz_client, 'root')}"}
    checks = _checks()
    failures: dict[str, str] = {}
    operations = [r.ok() for r in schema.get_all_operations()]
    random.Random(8).shuffle(operations)  # a cut budget does not always spare the same end
    started = time.monotonic()
    tried = 0
    for operation in operations:
        label = f"{operation.method.upper()} {operation.path}"
        if SKIPPED.search(label) or time.monotonic() - started > BUDGET_SECONDS:
            continue
        tried += 1

        @given(case=operation.as_strategy())
        @hsettings(
            max_examples=EXAMPLES,
            deadline=None,
            database=None,
            derandomize=True,
            phases=[Phase.explicit, Phase.generate],
            suppress_health_check=list(HealthCheck),
        )
        def run(case: Any) -> None:
            kwargs = case.as_transport_kwargs(base_url="http://testserver", headers=auth)
            kwargs.pop("base_url", None)
            kwargs["files"] = _httpx_files(kwargs.get("files"))
            response = fuzz_client.request(**kwargs)
            response.request.read()  # a multipart body is a stream; the report quotes it
            case.validate_response(response, checks=checks)

        try:
            run()
        except Exception as exc:  # collect every operation's failure, then report all
            failures[label] = f"{type(exc).__name__}: {str(exc)[:1500]}"
    assert tried >= 40, f"only {tried} operations fuzzed within the budget"
    assert failures == {}, "\n\n".join(f"{k}\n{v}" for k, v in failures.items())
