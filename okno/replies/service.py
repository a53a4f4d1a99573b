"""Saved replies: who may see and edit which, search, and filling in placeholders.

Placeholders are ``{{customer.first_name}}``, ``{{customer.name}}``,
``{{operator.first_name}}`` and ``{{operator.name}}``; an unknown one is refused when the
reply is saved, so an operator never sends a customer a raw ``{{...}}``.
"""

from __future__ import annotations

import re

from sqlalchemy import false, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from okno.db.base import utcnow
from okno.errors import BadRequest, Forbidden, NotFound
from okno.operators.models import Team, User
from okno.replies.models import SavedReply
from okno.security.permissions import has

PLACEHOLDER = re.compile(r"\{\{\s*([a-z_]+\.[a-z_]+)\s*\}\}")
KNOWN = ("customer.first_name", "customer.name", "operator.first_name", "operator.name")


def check_placeholders(body: str) -> None:
    unknown = sorted({m for m in PLACEHOLDER.findall(body) if m not in KNOWN})
    if unknown:
        raise BadRequest(
            f"unknown placeholder {{{{{unknown[0]}}}}}; use one of "
            + ", ".join("{{" + k + "}}" for k in KNOWN),
            code="unknown_placeholder",
            unknown=unknown,
            field="body",
        )


def first_name(full: str) -> str:
    parts = full.split()
    return parts[0] if parts else full


def render(body: str, *, customer_name: str, operator_name: str) -> str:
    """Fill in the placeholders. A customer whose name we do not know gets none, and the
    comma before it goes too: "Здравствуйте, {{customer.first_name}}!" -> "Здравствуйте!"."""
    values = {
        "customer.name": customer_name,
        "customer.first_name": first_name(customer_name),
        "operator.name": operator_name,
        "operator.first_name": first_name(operator_name),
    }
    text = PLACEHOLDER.sub(lambda m: values.get(m.group(1), m.group(0)), body)
    if not customer_name:
        text = re.sub(r",\s*(?=[!?.,])", "", text)
        text = re.sub(r"[ \t]{2,}", " ", text)
    return text


def may_edit(reply: SavedReply, user: User) -> bool:
    if reply.scope == "personal":
        return reply.owner_id == user.id
    if has(user, "templates.manage_all"):
        return True
    if reply.scope == "team" and has(user, "templates.manage_team"):
        return user.team_id is None or user.team_id == reply.team_id
    return False


def may_see(reply: SavedReply, user: User) -> bool:
    if reply.scope == "shared":
        return True
    if reply.scope == "team":
        return user.team_id == reply.team_id or may_edit(reply, user)
    return reply.owner_id == user.id


async def create(
    session: AsyncSession,
    *,
    actor: User,
    scope: str,
    shortcut: str,
    title: str,
    body: str,
    team_id: int | None = None,
) -> SavedReply:
    """Save a reply; operators save personal ones, senior operators and supervisors their
    team's (a team-less supervisor any team's), admins any."""
    check_placeholders(body)
    if scope == "team":
        team_id = team_id or actor.team_id
        if team_id is None:
            raise BadRequest("say which team the reply is for", code="team_required")
        if await session.get(Team, team_id) is None:
            raise NotFound(f"no team {team_id}", code="team_not_found")
        if not has(actor, "templates.manage_all") and (
            not has(actor, "templates.manage_team") or actor.team_id not in (None, team_id)
        ):
            raise Forbidden(
                "team replies are kept by the team's senior operators and supervisor",
                code="forbidden_role",
                permission="templates.manage_team",
            )
    elif scope == "shared" and not has(actor, "templates.manage_all"):
        raise Forbidden(
            "replies for everyone are kept by admins",
            code="forbidden_role",
            permission="templates.manage_all",
        )
    now = utcnow()
    reply = SavedReply(
        scope=scope,
        owner_id=actor.id if scope == "personal" else None,
        team_id=team_id if scope == "team" else None,
        shortcut=shortcut,
        title=title.strip(),
        body=body.strip(),
        created_by=actor.id,
        created_at=now,
        updated_at=now,
    )
    session.add(reply)
    await session.flush()
    return reply


async def access(session: AsyncSession, reply_id: int, user: User, *, edit: bool) -> SavedReply:
    reply = await session.get(SavedReply, reply_id)
    if reply is None or not may_see(reply, user):
        raise NotFound(f"saved reply {reply_id} does not exist", code="not_found")
    if edit and not may_edit(reply, user):
        raise Forbidden("you may use this reply but not change it", code="forbidden_role")
    return reply


async def update(
    session: AsyncSession,
    reply: SavedReply,
    *,
    shortcut: str | None,
    title: str | None,
    body: str | None,
) -> SavedReply:
    if body is not None:
        check_placeholders(body)
        reply.body = body.strip()
    if shortcut is not None:
        reply.shortcut = shortcut
    if title is not None:
        reply.title = title.strip()
    reply.updated_at = utcnow()
    await session.flush()
    return reply


async def search(
    session: AsyncSession, *, user: User, query: str = "", limit: int = 20
) -> list[SavedReply]:
    """Replies the user may use, best match first: the shortcut (what follows ``/``) before
    the title before the text; case- and ё-insensitive."""
    visible = select(SavedReply).where(
        or_(
            SavedReply.scope == "shared",
            SavedReply.owner_id == user.id,
            SavedReply.team_id == user.team_id if user.team_id is not None else false(),
        )
    )
    rows = list((await session.scalars(visible.order_by(SavedReply.shortcut))).all())
    needle = _fold(query.lstrip("/"))
    if not needle:
        return rows[:limit]
    ranked = []
    for reply in rows:
        if _fold(reply.shortcut).startswith(needle):
            rank = 0
        elif needle in _fold(reply.title):
            rank = 1
        elif needle in _fold(reply.body):
            rank = 2
        else:
            continue
        ranked.append((rank, reply.shortcut, reply))
    ranked.sort(key=lambda r: (r[0], r[1]))
    return [r[2] for r in ranked[:limit]]


def _fold(text: str) -> str:
    return text.casefold().replace("ё", "е")
