"""Pages for people: sign-in, the operator workspace, the supervisor board, administration,
the demo bank page, and /widget.js.

Staff pages are server-rendered shells; the data arrives through the same JSON API and
event socket integrators use, so the browser holds no privilege the API would not give.
A page checks the session cookie itself only to send a stranger to the sign-in page
instead of an empty shell, and to refuse a role its page is not for.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

import structlog
from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates

from okno.conversations import service as conversations
from okno.errors import Forbidden, NotFound, OknoError
from okno.inputs import IdPath
from okno.operators import revocation
from okno.operators.models import User
from okno.security import headers as security_headers
from okno.security import permissions, sessions
from okno.web import i18n

WEB = Path(__file__).parent
STATIC = WEB / "static"
templates = Jinja2Templates(directory=str(WEB / "templates"))
router = APIRouter(include_in_schema=False)
log = structlog.get_logger("okno.web")

# Staff pages load only our own scripts and styles and talk only to our own origin; user
# text that somehow became markup still could not run a script.
STAFF_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
    "media-src 'self' data: blob:; connect-src 'self'; frame-ancestors 'none'; "
    "base-uri 'none'; form-action 'self'"
)
# The permission each staff page needs (okno.security.permissions); what a page may then
# change is the API's decision, so a read-only role gets a read-only page.
PAGE_PERMISSIONS = {
    "workspace": "conversations.read_team",
    "supervisor": "reports.read",
    "admin": "users.review",  # admins and security officers change, auditors read
    "templates": "templates.use",
    "bot": "bot.read",  # supervisors and auditors read, admins change
    "channels": "channels.manage",
    "audit": "audit.read",
}


def _base_url(request: Request) -> str:
    public = request.app.state.okno.settings.public_url
    return public.rstrip("/") if public else str(request.base_url).rstrip("/")


def _lang(request: Request) -> str:
    return i18n.pick_language(request.cookies.get(i18n.LANG_COOKIE))


async def _signed_in(request: Request) -> User | None:
    state = request.app.state.okno
    cookie = request.cookies.get(sessions.SESSION_COOKIE)
    if not cookie:
        return None
    try:
        browser = sessions.read(
            state.signing_key, cookie, max_minutes=state.settings.session_max_minutes
        )
    except OknoError:
        return None
    async with state.db.read() as session:
        user = await session.get(User, browser.user_id)
        if user is not None and await revocation.generation(session, user.id) != browser.generation:
            return None  # signed out everywhere, or the password changed
    return user if user is not None and user.is_active else None


def _render(request: Request, name: str, *, status: int = 200, **context: Any) -> HTMLResponse:
    lang = _lang(request)
    table = i18n.texts(lang)

    def t(key: str, **values: object) -> str:
        return i18n.fill(table.get(key, key), values)

    user = context.get("user")

    def can(permission: str) -> bool:
        """What the page shows (links, edit buttons) follows the signed-in permissions."""
        return user is not None and permissions.has(user, permission)

    response = templates.TemplateResponse(
        request,
        name,
        {"lang": lang, "t": t, "can": can, "boot": {"lang": lang, "texts": table}, **context},
        status_code=status,
    )
    response.headers["Content-Security-Policy"] = STAFF_CSP
    response.headers["Cache-Control"] = "no-store"
    return response


async def _staff_page(request: Request, page: str, *, open_id: int | None = None) -> Response:
    user = await _signed_in(request)
    if user is None:
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        return RedirectResponse(f"/login?next={quote(target)}", status_code=303)
    if not permissions.has(user, PAGE_PERMISSIONS[page]):
        log.warning("access.denied", user_id=user.id, page=page, role=user.role)
        return _render(request, "forbidden.html", status=403, user=user, page=page)
    lang = _lang(request)
    boot = {
        "me": {
            "id": user.id,
            "login": user.login,
            "name": user.display_name,
            "role": user.role,
            "team_id": user.team_id,
            "permissions": sorted(permissions.permissions_of(user)),
        },
        "lang": lang,
        "texts": i18n.texts(lang),
        "idle_minutes": request.app.state.okno.settings.session_idle_minutes,
        "open": open_id,
    }
    return _render(request, f"{page}.html", user=user, page=page, boot=boot)


@router.get("/login", response_class=HTMLResponse)
async def login_page(request: Request, next: str = "/", reason: str = "") -> Response:
    """The sign-in form; ``reason`` says why the person is here (``expired``,
    ``signed_out``, or an error code such as ``oidc_no_role``), shown in their language."""
    settings = request.app.state.okno.settings
    oidc_on = bool(settings.oidc_issuer and settings.oidc_client_id)
    return _render(
        request,
        "login.html",
        next=_safe_next(next),
        oidc=oidc_on,
        reason_key=_reason_key(reason),
    )


def _reason_key(reason: str) -> str:
    """The text key for a sign-in page ``reason``; "" for anything without a text (the
    parameter comes from the address bar: only known codes are shown)."""
    for key in (f"login.{reason}", f"error.{reason}"):
        if reason and reason.replace("_", "").isalnum() and key in i18n.TEXTS:
            return key
    return ""


def _safe_next(target: str) -> str:
    """Only a path on this site: a crafted link must not bounce a signed-in operator away.

    Browsers read a backslash as a slash and drop tabs and newlines, so ``/\\evil.example``
    (which the sign-in page hands to ``location.assign``) would leave the site too."""
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//"):
        return "/"
    if "\\" in target or any(ord(c) < 0x20 or ord(c) == 0x7F for c in target):
        return "/"
    return target


@router.get("/lang/{code}")
async def switch_language(request: Request, code: str, next: str = "/") -> Response:
    """Remember the UI language in a cookie (a year) and go back."""
    response = RedirectResponse(_safe_next(next), status_code=303)
    if code in i18n.LANGUAGES:
        response.set_cookie(
            i18n.LANG_COOKIE,
            code,
            max_age=365 * 24 * 3600,
            samesite="lax",
            httponly=True,
            secure=request.url.scheme == "https",
        )
    return response


@router.get("/", response_class=HTMLResponse)
@permissions.declare(PAGE_PERMISSIONS["workspace"])
async def workspace_page(request: Request) -> Response:
    return await _staff_page(request, "workspace")


@router.get("/c/{conversation_id}", response_class=HTMLResponse)
@permissions.declare(PAGE_PERMISSIONS["workspace"])
async def dialog_page(request: Request, conversation_id: IdPath) -> Response:
    """The workspace with one dialog open: a link a colleague can share. Another team's
    dialog answers 403 here as in the API, and the attempt is logged."""
    user = await _signed_in(request)
    if user is not None:
        state = request.app.state.okno
        async with state.db.read() as session:
            try:
                await conversations.access_conversation(session, conversation_id, user)
            except Forbidden:
                log.warning(
                    "access.denied", user_id=user.id, conversation_id=conversation_id, page="dialog"
                )
                return _render(request, "forbidden.html", status=403, user=user, page="dialog")
            except NotFound:
                pass  # the page says so itself, like for a dialog deleted meanwhile
    return await _staff_page(request, "workspace", open_id=conversation_id)


@router.get("/supervisor", response_class=HTMLResponse)
@permissions.declare(PAGE_PERMISSIONS["supervisor"])
async def supervisor_page(request: Request) -> Response:
    return await _staff_page(request, "supervisor")


@router.get("/admin", response_class=HTMLResponse)
@permissions.declare(PAGE_PERMISSIONS["admin"])
async def admin_page(request: Request) -> Response:
    return await _staff_page(request, "admin")


@router.get("/templates", response_class=HTMLResponse)
@permissions.declare(PAGE_PERMISSIONS["templates"])
async def templates_page(request: Request) -> Response:
    return await _staff_page(request, "templates")


@router.get("/bot", response_class=HTMLResponse)
@permissions.declare(PAGE_PERMISSIONS["bot"])
async def bot_page(request: Request) -> Response:
    """The bot's content: articles with history, unanswered questions, template
    candidates, the threshold trade-off and the bot's figures."""
    return await _staff_page(request, "bot")


@router.get("/channels", response_class=HTMLResponse)
@permissions.declare(PAGE_PERMISSIONS["channels"])
async def channels_page(request: Request) -> Response:
    """Messenger channels: add one, change its settings, check it with the platform, see
    the address to give the platform and the channel's recent errors."""
    return await _staff_page(request, "channels")


@router.get("/audit", response_class=HTMLResponse)
@permissions.declare(PAGE_PERMISSIONS["audit"])
async def audit_page(request: Request) -> Response:
    """The audit log for the security officer: search by who, what, which object and
    when; verify the hash chain; retention runs and a dry run."""
    return await _staff_page(request, "audit")


@router.get("/demo", response_class=HTMLResponse)
async def demo_page(request: Request, key: str = "demo", lang: str = "ru") -> HTMLResponse:
    """A fictional bank's page with the widget embedded by one script tag (``lang=en``: the
    widget's own labels in English)."""
    base_url = _base_url(request)
    response = templates.TemplateResponse(
        request,
        "demo.html",
        {"base_url": base_url, "widget_key": key, "widget_lang": "en" if lang == "en" else ""},
    )
    # as strict as a careful bank's own page: the widget must work under it
    response.headers["Content-Security-Policy"] = security_headers.demo_csp(base_url)
    response.headers["Permissions-Policy"] = security_headers.DEMO_PERMISSIONS_POLICY
    return response


@router.get("/widget.js")
async def widget_js() -> FileResponse:
    return FileResponse(
        STATIC / "widget.js",
        media_type="text/javascript; charset=utf-8",
        headers={"Cache-Control": "public, max-age=300", "Access-Control-Allow-Origin": "*"},
    )
