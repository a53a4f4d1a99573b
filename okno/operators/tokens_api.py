"""API tokens over HTTP: create (the secret shown once), list, revoke. Admins and security
officers (``tokens.manage``); auditors may list them (``tokens.read``)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import structlog
from fastapi import APIRouter
from pydantic import BaseModel, Field
from sqlalchemy.ext.asyncio import AsyncSession

from okno.db.base import utcnow
from okno.http import State, require, write
from okno.inputs import IdPath, Input
from okno.operators import api_tokens
from okno.operators.models import ApiToken, User
from okno.security import permissions

log = structlog.get_logger("okno.admin")
router = APIRouter(prefix="/api/v1/tokens", tags=["API tokens"])
Reader = Annotated[User, require("tokens.read")]
Manager = Annotated[User, require("tokens.manage")]


class TokenCreate(Input):
    name: str = Field(min_length=1, max_length=100, description="Who uses it, e.g. 'CRM'.")
    scopes: list[str] = Field(
        min_length=1,
        max_length=len(permissions.TOKEN_SCOPES),
        description="Permissions the token holds: " + ", ".join(sorted(permissions.TOKEN_SCOPES)),
    )
    expires_days: int | None = Field(
        default=None, ge=1, le=api_tokens.MAX_EXPIRES_DAYS, description="None: never expires."
    )


class TokenOut(BaseModel):
    id: int
    name: str
    prefix: str = Field(description="The secret's first characters, to recognise it.")
    scopes: list[str]
    user_id: int = Field(description="The token's integration account (who acted, in logs).")
    created_by: int | None
    created_at: datetime
    expires_at: datetime | None
    last_used_at: datetime | None
    revoked_at: datetime | None
    status: str = Field(description="active, expired or revoked")


class TokenCreated(TokenOut):
    token: str = Field(description="The secret: shown this once, keep it safe.")


class TokensOut(BaseModel):
    tokens: list[TokenOut]


def token_out(row: ApiToken) -> TokenOut:
    return TokenOut(
        id=row.id,
        name=row.name,
        prefix=row.prefix,
        scopes=list(row.scopes or []),
        user_id=row.user_id,
        created_by=row.created_by,
        created_at=row.created_at,
        expires_at=row.expires_at,
        last_used_at=row.last_used_at,
        revoked_at=row.revoked_at,
        status=api_tokens.status_of(row, utcnow()),
    )


@router.post("", response_model=TokenCreated, status_code=201)
async def create_token(body: TokenCreate, user: Manager, state: State) -> TokenCreated:
    """Create a token for an integration; the secret is in ``token`` and never shown again.
    422 ``invalid_scope`` names a scope an API token may not hold."""

    async def run(session: AsyncSession) -> TokenCreated:
        row, secret = await api_tokens.create_token(
            session,
            name=body.name,
            scopes=body.scopes,
            created_by=user.id,
            expires_days=body.expires_days,
        )
        return TokenCreated(**token_out(row).model_dump(), token=secret)

    out = await write(state, run)
    log.info(
        "admin.token_created",
        actor_id=user.id,
        token_id=out.id,
        prefix=out.prefix,
        scopes=out.scopes,
    )
    return out


@router.get("", response_model=TokensOut)
async def list_tokens(user: Reader, state: State) -> TokensOut:
    """Every token with its scopes, status and when it was last used (never the secret)."""
    async with state.db.read() as session:
        rows = await api_tokens.list_tokens(session)
    return TokensOut(tokens=[token_out(r) for r in rows])


@router.delete("/{token_id}", response_model=TokenOut)
async def revoke_token(token_id: IdPath, user: Manager, state: State) -> TokenOut:
    """Revoke a token: refused from the next request on, open sockets are cut within a
    heartbeat. Revoking twice changes nothing."""

    async def run(session: AsyncSession) -> TokenOut:
        return token_out(await api_tokens.revoke_token(session, token_id=token_id))

    out = await write(state, run)
    log.info("admin.token_revoked", actor_id=user.id, token_id=out.id, prefix=out.prefix)
    return out
