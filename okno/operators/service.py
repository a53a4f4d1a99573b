"""Staff users and teams: creation, sign-in, lookup."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from okno.errors import BadRequest, Conflict, NotFound, Unauthorized
from okno.operators.models import ROLES, Team, User
from okno.security import tokens
from okno.security.passwords import hash_password, verify_password

MIN_PASSWORD = 8


async def get_or_create_team(session: AsyncSession, *, name: str) -> Team:
    team = await session.scalar(select(Team).where(Team.name == name))
    if team is None:
        team = Team(name=name)
        session.add(team)
        await session.flush()
    return team


async def get_team(session: AsyncSession, team_id: int) -> Team | None:
    return await session.get(Team, team_id)


async def list_teams(session: AsyncSession) -> list[Team]:
    return list((await session.scalars(select(Team).order_by(Team.name))).all())


async def create_user(
    session: AsyncSession,
    *,
    login: str,
    password: str,
    role: str,
    display_name: str | None = None,
    team: str | None = None,
    capacity: int = 5,
    password_hash: str | None = None,
) -> User:
    """Create a staff user; raises BadRequest for a bad role/password, Conflict if taken.

    ``password_hash`` (an argon2 hash) imports an account moved from another system
    without knowing its password; then ``password`` is ignored.
    """
    login = login.strip()
    if not login or len(login) > 100 or any(c.isspace() for c in login):
        raise BadRequest("login must be 1-100 characters without spaces", code="invalid_login")
    if role not in ROLES:
        raise BadRequest(f"role must be one of {', '.join(ROLES)}", code="invalid_role")
    if password_hash is None and len(password) < MIN_PASSWORD:
        raise BadRequest(
            f"password must be at least {MIN_PASSWORD} characters", code="weak_password"
        )
    if capacity < 1 or capacity > 100:
        raise BadRequest("capacity must be between 1 and 100", code="invalid_capacity")
    if await session.scalar(select(User.id).where(User.login == login)):
        raise Conflict(f"login {login!r} is taken", code="login_taken")
    team_row = await get_or_create_team(session, name=team) if team else None
    user = User(
        login=login,
        display_name=display_name or login,
        password_hash=password_hash or hash_password(password),
        role=role,
        team_id=team_row.id if team_row else None,
        capacity=capacity,
    )
    session.add(user)
    await session.flush()
    return user


async def get_user(session: AsyncSession, user_id: int) -> User | None:
    return await session.get(User, user_id)


async def get_user_or_raise(session: AsyncSession, user_id: int) -> User:
    user = await session.get(User, user_id)
    if user is None or not user.is_active:
        raise NotFound(f"user {user_id} does not exist", code="user_not_found")
    return user


async def list_users(session: AsyncSession) -> list[User]:
    return list(
        (await session.scalars(select(User).where(User.is_active).order_by(User.login))).all()
    )


async def authenticate(session: AsyncSession, *, login: str, password: str) -> User:
    """The active user with this login and password; Unauthorized otherwise."""
    user = await session.scalar(select(User).where(User.login == login))
    # argon2 takes ~0.1-0.2 s of CPU by design: in a thread, so a burst of sign-ins (the
    # start of a shift, or someone guessing) does not freeze every socket of the process.
    ok = await asyncio.to_thread(verify_password, user.password_hash if user else None, password)
    if user is None or not ok or not user.is_active:
        raise Unauthorized("wrong login or password", code="bad_credentials")
    return user


def issue_access_token(key: str, user: User, *, minutes: int) -> str:
    return tokens.issue(key, typ=tokens.STAFF, subject=str(user.id), ttl=timedelta(minutes=minutes))


async def user_from_token(session: AsyncSession, *, key: str, token: str) -> User:
    """The active user a staff token belongs to (re-read, so deactivation takes effect)."""
    claims = tokens.verify(key, token, typ=tokens.STAFF)
    try:
        user_id = int(claims["sub"])
    except (TypeError, ValueError):
        raise Unauthorized("the token is not valid", code="token_invalid") from None
    user = await session.get(User, user_id)
    if user is None or not user.is_active:
        raise Unauthorized("this account is disabled", code="account_disabled")
    return user


async def active_user_ids(session: AsyncSession, user_ids: list[int]) -> set[int]:
    """Which of these users still have active accounts."""
    if not user_ids:
        return set()
    rows = await session.scalars(select(User.id).where(User.id.in_(user_ids), User.is_active))
    return set(rows.all())
