"""What WhatsApp Cloud API and Messenger share, both being Meta Graph API webhooks.

A webhook call is signed: ``X-Hub-Signature-256: sha256=<hex>``, the HMAC-SHA256 of the raw
body keyed by the Meta app's secret. Before Meta sends anything it checks the address with
a GET carrying ``hub.mode=subscribe``, ``hub.verify_token`` (the string the bank typed into
the app's webhook settings) and ``hub.challenge``, which must be echoed back.

Send errors come as ``{"error": {"message", "type", "code", "error_subcode",
"error_data", "fbtrace_id"}}``; `graph_error` reads them.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from typing import Any

import httpx

from okno.channels.adapter import ConfigField, HookRequest, require_signature
from okno.errors import BadRequest, Forbidden

DEFAULT_API_BASE = "https://graph.facebook.com"
DEFAULT_VERSION = "v21.0"
SIGNATURE_HEADER = "x-hub-signature-256"

APP_SECRET = ConfigField(
    "app_secret",
    "The Meta app's secret (App settings → Basic); every webhook is signed with it.",
    secret=True,
)
VERIFY_TOKEN = ConfigField(
    "verify_token",
    "Any string of your choice; type the same into the app's webhook settings.",
    secret=True,
)
API_VERSION = ConfigField(
    "api_version", "The Graph API version okno calls.", required=False, default=DEFAULT_VERSION
)


def signature_of(body: bytes, app_secret: str) -> str:
    """The ``X-Hub-Signature-256`` value Meta sends with ``body``."""
    return "sha256=" + hmac.new(app_secret.encode(), body, hashlib.sha256).hexdigest()


def verify_signature(config: dict[str, Any], request: HookRequest) -> None:
    """Forbidden unless the body is signed with the channel's app secret."""
    secret = str(config.get("app_secret") or "")
    got = request.headers.get(SIGNATURE_HEADER, "")
    expected = signature_of(request.body, secret) if secret else ""
    require_signature(
        bool(expected) and hmac.compare_digest(expected.encode(), got.strip().lower().encode())
    )


def handshake(config: dict[str, Any], request: HookRequest) -> str:
    """Echo ``hub.challenge`` when ``hub.verify_token`` is the channel's own."""
    query = request.query
    if query.get("hub.mode") != "subscribe" or "hub.challenge" not in query:
        raise BadRequest(
            "a Meta verification request has hub.mode=subscribe and hub.challenge",
            code="malformed_webhook",
        )
    expected = str(config.get("verify_token") or "")
    got = query.get("hub.verify_token", "")
    if not expected or not hmac.compare_digest(expected.encode(), got.encode()):
        raise Forbidden("hub.verify_token does not match", code="bad_verify_token")
    return query["hub.challenge"]


def check_version(config: dict[str, Any]) -> None:
    version = str(config.get("api_version") or DEFAULT_VERSION)
    if not (version.startswith("v") and version[1:].replace(".", "").isdigit()):
        raise BadRequest(
            "api_version looks like v21.0", code="invalid_setting", field="api_version"
        )


def graph_url(config: dict[str, Any], path: str) -> str:
    """``{api_base}/{version}/{path}``."""
    base = str(config.get("api_base") or DEFAULT_API_BASE).rstrip("/")
    return f"{base}/{config.get('api_version') or DEFAULT_VERSION}/{path.lstrip('/')}"


@dataclass(frozen=True)
class GraphError:
    status: int
    code: int | None
    subcode: int | None
    message: str
    details: str

    def describe(self, what: str) -> str:
        codes = f"#{self.code}" + (f"/{self.subcode}" if self.subcode else "")
        text = self.details or self.message
        return (
            f"{what}: {codes} {text}".strip()[:500]
            if self.code
            else f"{what}: status {self.status}"
        )


def graph_error(response: httpx.Response) -> GraphError:
    """The error Meta put in a failed response (its code may be None: a proxy's 502)."""
    try:
        data = response.json()
    except ValueError:
        data = None
    error = data.get("error") if isinstance(data, dict) else None
    if not isinstance(error, dict):
        return GraphError(response.status_code, None, None, "", "")
    code, subcode = error.get("code"), error.get("error_subcode")
    extra = error.get("error_data")
    details = extra.get("details") if isinstance(extra, dict) else None
    return GraphError(
        status=response.status_code,
        code=code if isinstance(code, int) else None,
        subcode=subcode if isinstance(subcode, int) else None,
        message=str(error.get("message") or "")[:300],
        details=str(details or "")[:300],
    )


def retry_after(response: httpx.Response) -> float | None:
    header = response.headers.get("retry-after", "").strip()
    try:
        return float(header) if header else None
    except ValueError:
        return None
