"""Staff sign-in and directory handlers."""

from __future__ import annotations

import structlog
from fastapi import APIRouter

from okno.http import CurrentUser, State
from okno.operators import service
from okno.operators.models import User
from okno.operators.schemas import TeamOut, TeamsOut, TokenRequest, TokenResponse, UserOut, UsersOut

log = structlog.get_logger("okno.auth")
router = APIRouter(prefix="/api/v1", tags=["staff"])


def user_out(user: User) -> UserOut:
    return UserOut(
        id=user.id,
        login=user.login,
        name=user.display_name,
        role=user.role,
        team_id=user.team_id,
        capacity=user.capacity,
    )


# Unauthenticated on purpose: this is where a token comes from.
@router.post("/auth/token", response_model=TokenResponse)
async def issue_token(body: TokenRequest, state: State) -> TokenResponse:
    """Exchange login and password for a bearer access token."""
    async with state.db.read() as session:
        try:
            user = await service.authenticate(session, login=body.login, password=body.password)
        except Exception:
            log.info("auth.failed", login_length=len(body.login))
            raise
    log.info("auth.signed_in", user_id=user.id, role=user.role)
    minutes = state.settings.access_token_minutes
    token = service.issue_access_token(state.signing_key, user, minutes=minutes)
    return TokenResponse(access_token=token, expires_in=minutes * 60)


@router.get("/me", response_model=UserOut)
async def me(user: CurrentUser) -> UserOut:
    return user_out(user)


@router.get("/users", response_model=UsersOut)
async def users(user: CurrentUser, state: State) -> UsersOut:
    """Active staff (transfer targets)."""
    async with state.db.read() as session:
        rows = await service.list_users(session)
    return UsersOut(users=[user_out(u) for u in rows])


@router.get("/teams", response_model=TeamsOut)
async def teams(user: CurrentUser, state: State) -> TeamsOut:
    async with state.db.read() as session:
        rows = await service.list_teams(session)
    return TeamsOut(teams=[TeamOut(id=t.id, name=t.name) for t in rows])
