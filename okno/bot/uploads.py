"""Files an admin uploads as a request body (knowledge base, flows, the directory): size
limit, UTF-8 (a spreadsheet's byte-order mark allowed), and YAML/JSON parsed with the
line and column of a mistake in the error."""

from __future__ import annotations

from typing import Any

import yaml
from fastapi import Request

from okno.bot.service import yaml_problem
from okno.errors import BadRequest

MAX_BODY = 5 * 1024 * 1024


async def text_body(request: Request) -> str:
    raw = await request.body()
    if len(raw) > MAX_BODY:
        raise BadRequest(f"the file is larger than {MAX_BODY // 1024 // 1024} MB", code="too_large")
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise BadRequest("the file is not UTF-8 text", code="bad_encoding") from None


async def yaml_body(request: Request, *, code: str) -> Any:
    text = await text_body(request)
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise BadRequest(
            f"the body is not valid YAML or JSON: {yaml_problem(exc)}", code=code
        ) from None
