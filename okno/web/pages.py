"""Pages for people: the minimal operator page, the demo bank page, and /widget.js."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, HTMLResponse
from fastapi.templating import Jinja2Templates

WEB = Path(__file__).parent
STATIC = WEB / "static"
templates = Jinja2Templates(directory=str(WEB / "templates"))
router = APIRouter(include_in_schema=False)


def _base_url(request: Request) -> str:
    public = request.app.state.okno.settings.public_url
    return public.rstrip("/") if public else str(request.base_url).rstrip("/")


@router.get("/", response_class=HTMLResponse)
async def operator_page(request: Request) -> HTMLResponse:
    return templates.TemplateResponse(request, "operator.html", {"static_url": "/static"})


@router.get("/demo", response_class=HTMLResponse)
async def demo_page(request: Request, key: str = "demo") -> HTMLResponse:
    """A fictional bank's page with the widget embedded by one script tag."""
    return templates.TemplateResponse(
        request, "demo.html", {"base_url": _base_url(request), "widget_key": key}
    )


@router.get("/widget.js")
async def widget_js() -> FileResponse:
    return FileResponse(
        STATIC / "widget.js",
        media_type="text/javascript; charset=utf-8",
        headers={"Cache-Control": "public, max-age=300", "Access-Control-Allow-Origin": "*"},
    )
