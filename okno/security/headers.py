"""The security headers every okno response carries, and which apply where.

- Staff pages set their own Content-Security-Policy (``okno.web.pages.STAFF_CSP``): only
  okno's own scripts and styles, no inline script, no framing.
- The demo bank page sets a strict policy of the kind a careful bank's site would have,
  which the widget must work under (``demo_csp``).
- Everything else (JSON API answers, attachment downloads, static files) gets
  ``default-src 'none'``: if some answer were ever taken for a page it could run nothing.
  The interactive API docs (``/docs``, ``/redoc``) load Swagger's scripts and keep only the
  framing ban.
- No okno response may be framed (``X-Frame-Options: DENY`` and ``frame-ancestors 'none'``;
  the widget is a script in the bank's page, not a frame). Pages are isolated from the
  windows that opened them (``Cross-Origin-Opener-Policy: same-origin``) and get no camera,
  microphone, payment or sensor access (``Permissions-Policy``).
- Over https, ``Strict-Transport-Security`` tells browsers to use https only for a year.
- ``Cross-Origin-Resource-Policy: same-origin`` keeps other sites from embedding staff
  answers; the widget's public endpoints and ``/widget.js`` are ``cross-origin`` (the bank's
  page loads them).
"""

from __future__ import annotations

from urllib.parse import urlsplit

API_CSP = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
DOCS_CSP = "frame-ancestors 'none'"
DOCS_PATHS = ("/docs", "/redoc")
PERMISSIONS_POLICY = (
    "accelerometer=(), camera=(), geolocation=(), gyroscope=(), magnetometer=(), "
    "microphone=(), payment=(), usb=()"
)
# The demo bank page lets the widget ask for the customer's location ("share location").
DEMO_PERMISSIONS_POLICY = PERMISSIONS_POLICY.replace("geolocation=()", "geolocation=(self)")
HSTS = "max-age=31536000; includeSubDomains"


def demo_csp(widget_base_url: str) -> str:
    """A strict bank page's policy that still admits okno's widget from ``widget_base_url``:
    the script from okno's origin, its API calls and socket there; no inline anything."""
    parts = urlsplit(widget_base_url)
    origin = f"{parts.scheme}://{parts.netloc}" if parts.netloc else ""
    socket = ""
    if origin:
        socket = ("wss://" if parts.scheme == "https" else "ws://") + parts.netloc
    extra = f" {origin}" if origin else ""
    return (
        f"default-src 'self'; script-src 'self'{extra}; style-src 'self'; "
        f"img-src 'self' data: blob:{extra}; connect-src 'self'{extra} {socket}".rstrip()
        + "; frame-ancestors 'none'; base-uri 'none'; form-action 'self'; object-src 'none'"
    )


def for_response(
    path: str, *, https: bool, public: bool, present: set[bytes]
) -> list[tuple[bytes, bytes]]:
    """Headers to add to a response for ``path`` that does not set them itself
    (``present``: lower-case names it already has)."""
    headers: list[tuple[bytes, bytes]] = [
        (b"x-content-type-options", b"nosniff"),
        (b"referrer-policy", b"same-origin"),
        (b"x-frame-options", b"DENY"),
        (b"cross-origin-opener-policy", b"same-origin"),
        (b"permissions-policy", PERMISSIONS_POLICY.encode()),
        (b"cross-origin-resource-policy", b"cross-origin" if public else b"same-origin"),
    ]
    if path.startswith(DOCS_PATHS):
        headers.append((b"content-security-policy", DOCS_CSP.encode()))
    else:
        headers.append((b"content-security-policy", API_CSP.encode()))
    if https:
        headers.append((b"strict-transport-security", HSTS.encode()))
    return [(k, v) for k, v in headers if k not in present]
