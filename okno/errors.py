"""One error base class for everything a client can be told.

    OknoError (code, status, message, fields)
    ├── BadRequest          400
    ├── Unauthorized        401
    ├── Forbidden           403
    ├── NotFound            404
    ├── Conflict            409
    ├── Gone                410
    ├── PayloadTooLarge     413
    ├── UnsupportedMedia    415
    ├── Unprocessable       422
    ├── TooManyRequests     429
    ├── BadGateway          502
    └── ServiceUnavailable  503

``create_app`` turns each into ``{"detail": message, "code": code, "fields": {...}}``.
"""

from __future__ import annotations

from typing import Any


class OknoError(Exception):
    """A failure with a stable machine ``code`` and a message a person can read."""

    status = 400
    code = "bad_request"

    def __init__(self, message: str, *, code: str | None = None, **fields: Any) -> None:
        super().__init__(message)
        self.message = message
        if code:
            self.code = code
        self.fields = fields

    def to_dict(self) -> dict[str, Any]:
        body: dict[str, Any] = {"detail": self.message, "code": self.code}
        if self.fields:
            body["fields"] = self.fields
        return body


class BadRequest(OknoError):
    status = 400
    code = "bad_request"


class Unauthorized(OknoError):
    status = 401
    code = "unauthorized"


class Forbidden(OknoError):
    status = 403
    code = "forbidden"


class NotFound(OknoError):
    status = 404
    code = "not_found"


class Conflict(OknoError):
    status = 409
    code = "conflict"


class Gone(OknoError):
    status = 410
    code = "gone"


class PayloadTooLarge(OknoError):
    status = 413
    code = "payload_too_large"


class UnsupportedMedia(OknoError):
    status = 415
    code = "unsupported_media_type"


class Unprocessable(OknoError):
    status = 422
    code = "invalid"


class TooManyRequests(OknoError):
    status = 429
    code = "too_many_requests"


class BadGateway(OknoError):
    """A bank system okno called on the user's behalf (the PBX) refused or did not answer."""

    status = 502
    code = "bad_gateway"


class ServiceUnavailable(OknoError):
    """A service okno needs for this request (the antivirus) is not answering; try later."""

    status = 503
    code = "service_unavailable"
