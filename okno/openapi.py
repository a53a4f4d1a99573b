"""The OpenAPI document as okno really answers: one error shape for every failure.

FastAPI documents a 422 of its own (``HTTPValidationError``: ``detail`` as a list) on
every operation with parameters, but okno answers every error, 422 included, with
``{"detail": str, "code": str, "fields"?: {...}}`` (``okno.http.install_error_handlers``).
A client generated from the document, or a contract checker such as schemathesis, would
otherwise reject okno's real answers. Here the document is rewritten once: the ``Error``
schema replaces FastAPI's validation models, and each operation that may refuse its
input says so with it.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

ERROR_SCHEMA: dict[str, Any] = {
    "title": "Error",
    "type": "object",
    "description": "Every error okno answers: a sentence for people, a stable code for "
    "programs, and details by field where there are any.",
    "required": ["detail", "code"],
    "properties": {
        "detail": {"type": "string", "description": "What is wrong, in plain words."},
        "code": {"type": "string", "description": "Stable machine code (e.g. not_found)."},
        "fields": {"type": "object", "additionalProperties": True},
    },
}
ERROR_REF = {"$ref": "#/components/schemas/Error"}


def install(app: FastAPI) -> None:
    """Serve the rewritten document at ``/openapi.json`` (built once, then cached)."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            document = get_openapi(
                title=app.title,
                version=app.version,
                description=app.description,
                routes=app.routes,
            )
            app.openapi_schema = rewrite(document)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def rewrite(document: dict[str, Any]) -> dict[str, Any]:
    """``document`` with okno's error shape on every 422 instead of FastAPI's."""
    schemas = document.setdefault("components", {}).setdefault("schemas", {})
    schemas.pop("HTTPValidationError", None)
    schemas.pop("ValidationError", None)
    schemas["Error"] = ERROR_SCHEMA
    for path_item in document.get("paths", {}).values():
        for operation in path_item.values():
            if not isinstance(operation, dict):
                continue
            response = operation.get("responses", {}).get("422")
            if response is not None:
                response["description"] = "The request is not valid (see code and fields)."
                response["content"] = {"application/json": {"schema": ERROR_REF}}
    return document
