"""Staff users and teams: creation, sign-in, lookup, and their administration."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from okno.errors import BadRequest, Conflict, NotFound, Unauthorized, Unprocessable
from okno.operators import revocation
from okno.operators import skills as skill_rules
from okno.operators.models import Team, User
from okno.routing.triggers import request_dispatch
from okno.security import password_policy, permissions, tokens
from okno.security.passwords import hash_password, verify_password

# Roles a staff account can be given here; integration accounts come with API tokens.
ROLES = permissions.INTERACTIVE_ROLES


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
    skills: dict[str, int] | None = None,
    check_policy: bool = True,
    min_length: int = password_policy.DEFAULT_MIN_LENGTH,
    min_classes: int = password_policy.DEFAULT_MIN_CLASSES,
) -> User:
    """Create a staff user; raises BadRequest for a bad role/password, Conflict if taken.

    The password passes the same policy as through the API (okno.security.password_policy;
    ``check_policy=False`` only for the demo's well-known accounts). ``password_hash`` (an
    argon2 hash) imports an account moved from another system without knowing its
    password; then ``password`` is ignored.
    """
    login = login.strip()
    if not login or len(login) > 100 or any(c.isspace() for c in login):
        raise BadRequest("login must be 1-100 characters without spaces", code="invalid_login")
    if role not in ROLES:
        raise BadRequest(_role_problem(role), code="invalid_role")
    if password_hash is None and check_policy:
        reason = password_policy.problem(
            password, login=login, min_length=min_length, min_classes=min_classes
        )
        if reason:
            raise BadRequest(reason, code="weak_password")
    if capacity < 1 or capacity > 100:
        raise BadRequest("capacity must be between 1 and 100", code="invalid_capacity")
    checked_skills = _skills(skills, error=BadRequest)
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
        skills=checked_skills,
    )
    session.add(user)
    await session.flush()
    return user


def _skills(value: object, *, error: type[BadRequest] | type[Unprocessable]) -> dict[str, int]:
    try:
        return skill_rules.normalize(value)
    except skill_rules.SkillsError as exc:
        raise error(str(exc), code="invalid_skills", field="skills") from None


async def get_user(session: AsyncSession, user_id: int) -> User | None:
    return await session.get(User, user_id)


async def get_user_or_raise(session: AsyncSession, user_id: int) -> User:
    user = await session.get(User, user_id)
    if user is None or not user.is_active:
        raise NotFound(f"user {user_id} does not exist", code="user_not_found")
    return user


async def list_users(session: AsyncSession, *, include_disabled: bool = False) -> list[User]:
    """Staff by login; disabled accounts only when asked (the admin page lists them)."""
    query = select(User).order_by(User.login)
    if not include_disabled:
        # the directory is of colleagues: an API token's account is nobody's transfer target
        query = query.where(User.is_active, User.role.in_(permissions.INTERACTIVE_ROLES))
    return list((await session.scalars(query)).all())


# --- administration (admins only) -------------------------------------------------------


def check_admin_grant(actor: User) -> None:
    """Separation of duties: a security officer manages accounts and roles but cannot make
    anyone an admin (who could then read every dialog), nor change an admin's account."""
    permissions.check(actor, "users.manage_admins", "give the admin role or change an admin")


def _role_problem(role: str) -> str:
    if role == "integration":
        return "integration accounts are made with their API token (`okno tokens create`)"
    return f"role must be one of {', '.join(ROLES)}"


async def hash_new_password(
    password: str,
    *,
    login: str = "",
    min_length: int = password_policy.DEFAULT_MIN_LENGTH,
    min_classes: int = password_policy.DEFAULT_MIN_CLASSES,
) -> str:
    """Check the password policy (okno.security.password_policy) and hash it.

    Called before the transaction opens: argon2 takes ~0.1-0.2 s of CPU, which inside a
    write would hold the database's write lock (SQLite) that long; in a thread so the event
    loop keeps serving sockets meanwhile.
    """
    password_policy.check(password, login=login, min_length=min_length, min_classes=min_classes)
    return await asyncio.to_thread(hash_password, password)


async def _team_for(session: AsyncSession, team_id: int | None) -> int | None:
    if team_id is not None and await session.get(Team, team_id) is None:
        raise Unprocessable(f"team {team_id} does not exist", code="unknown_team", field="team_id")
    return team_id


async def add_user(
    session: AsyncSession,
    *,
    login: str,
    name: str,
    password_hash: str,
    role: str,
    team_id: int | None,
    capacity: int,
    skills: dict[str, int] | None = None,
    actor: User | None = None,
) -> User:
    """An admin creates an account (the password already checked and hashed by
    ``hash_new_password``). 409 ``login_taken``, 422 ``unknown_team``."""
    if role not in ROLES:
        raise Unprocessable(_role_problem(role), code="invalid_role", field="role")
    if role == "admin" and actor is not None:
        check_admin_grant(actor)
    if await session.scalar(select(User.id).where(User.login == login)):
        raise Conflict(f"login {login!r} is taken", code="login_taken", field="login")
    user = User(
        login=login,
        display_name=name,
        password_hash=password_hash,
        role=role,
        team_id=await _team_for(session, team_id),
        capacity=capacity,
        skills=_skills(skills, error=Unprocessable),
        is_active=True,
    )
    session.add(user)
    # A racing create with the same login fails here on the unique index; the caller's
    # retry (``okno.http.write``) then finds the winner and answers 409.
    await session.flush()
    return user


async def check_password_is_ours(session: AsyncSession, user_id: int) -> None:
    """409 ``external_password`` for an account whose password the directory or the
    sign-in provider keeps: a password set in okno would never be asked for."""
    row = await revocation.state_of(session, user_id)
    if row is not None and row.source != "local":
        raise Conflict(
            "this account's password is kept by the directory or the sign-in provider; "
            "change it there",
            code="external_password",
            field="password",
        )


async def update_user(
    session: AsyncSession,
    *,
    actor: User,
    user_id: int,
    changes: dict[str, Any],
) -> tuple[User, list[str]]:
    """Apply an admin's changes to an account; returns it and the names of the fields that
    really changed (for the log and for ending stale sockets).

    ``changes`` holds only the fields the client sent: ``team_id: None`` means "no team",
    ``skills: None`` no skills.
    A password arrives as ``password_hash``. An admin may not disable or demote themselves
    (409 ``self_lockout``): an installation must never be left with nobody to undo it.
    """
    user = await session.get(User, user_id)
    if user is None:
        raise NotFound(f"user {user_id} does not exist", code="user_not_found")
    if user.id == actor.id:
        if changes.get("is_active") is False:
            raise Conflict(
                "you cannot disable your own account", code="self_lockout", field="is_active"
            )
        if "role" in changes and changes["role"] != user.role:
            # no one lowers their own rights by mistake, nor raises them at all
            raise Conflict("you cannot change your own role", code="self_lockout", field="role")
    if user.role == "admin" or changes.get("role") == "admin":
        check_admin_grant(actor)
    if "role" in changes and (changes["role"] not in ROLES or user.role not in ROLES):
        raise Unprocessable(
            _role_problem(changes["role"] if user.role in ROLES else user.role),
            code="invalid_role",
            field="role",
        )
    if "team_id" in changes:
        await _team_for(session, changes["team_id"])
    if "skills" in changes:  # null or {} clears them
        changes = {**changes, "skills": _skills(changes["skills"], error=Unprocessable)}
    changed: list[str] = []
    columns = {
        "name": "display_name",
        "role": "role",
        "team_id": "team_id",
        "capacity": "capacity",
        "skills": "skills",
        "is_active": "is_active",
    }
    for field, column in columns.items():
        if field in changes and getattr(user, column) != changes[field]:
            setattr(user, column, changes[field])
            changed.append(field)
    if changes.get("password_hash"):
        await check_password_is_ours(session, user.id)
        user.password_hash = changes["password_hash"]
        changed.append("password")
    if "password" in changed or ("is_active" in changed and not user.is_active):
        # a new password or a disabled account ends every token and session at once
        await revocation.revoke(session, user.id)
    if {"skills", "capacity", "team_id", "is_active"} & set(changed):
        await request_dispatch(session)  # waiting dialogs may fit this operator now
    await session.flush()
    return user, changed


async def _team_name_taken(session: AsyncSession, name: str, *, other_than: int | None) -> bool:
    # Case-insensitively and in Python: "Поддержка" and "поддержка" are one team to people,
    # and SQLite's lower() folds only ASCII. Teams are few.
    wanted = name.casefold()
    return any(
        t.name.casefold() == wanted and t.id != other_than for t in await list_teams(session)
    )


async def add_team(session: AsyncSession, *, name: str) -> Team:
    """A new team; 409 ``team_exists`` when the name is used (in any letter case)."""
    if await _team_name_taken(session, name, other_than=None):
        raise Conflict(f"team {name!r} already exists", code="team_exists", field="name")
    team = Team(name=name)
    session.add(team)
    await session.flush()
    return team


async def rename_team(session: AsyncSession, *, team_id: int, name: str) -> Team:
    """Rename a team (its members and dialogs keep it: they refer to the id)."""
    team = await session.get(Team, team_id)
    if team is None:
        raise NotFound(f"team {team_id} does not exist", code="team_not_found")
    if await _team_name_taken(session, name, other_than=team.id):
        raise Conflict(f"team {name!r} already exists", code="team_exists", field="name")
    team.name = name
    await session.flush()
    return team


async def authenticate(session: AsyncSession, *, login: str, password: str) -> User:
    """The active user with this login and password; Unauthorized otherwise."""
    user = await session.scalar(select(User).where(User.login == login))
    # argon2 takes ~0.1-0.2 s of CPU by design: in a thread, so a burst of sign-ins (the
    # start of a shift, or someone guessing) does not freeze every socket of the process.
    ok = await asyncio.to_thread(verify_password, user.password_hash if user else None, password)
    if user is None or not ok or not user.is_active:
        raise Unauthorized("wrong login or password", code="bad_credentials")
    if user.role not in permissions.INTERACTIVE_ROLES:
        # integration accounts act only through their API token
        raise Unauthorized("wrong login or password", code="bad_credentials")
    return user


def issue_access_token(key: str, user: User, *, minutes: int, generation: int = 0) -> str:
    """A staff bearer token carrying the account's credential generation (revocation)."""
    return tokens.issue(
        key,
        typ=tokens.STAFF,
        subject=str(user.id),
        ttl=timedelta(minutes=minutes),
        gen=generation,
    )


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
    if user.role not in permissions.INTERACTIVE_ROLES:
        raise Unauthorized("the token is not valid", code="token_invalid")
    await revocation.check(session, user.id, claims.get("gen"))
    return user


async def active_user_ids(session: AsyncSession, user_ids: list[int]) -> set[int]:
    """Which of these users still have active accounts."""
    if not user_ids:
        return set()
    rows = await session.scalars(select(User.id).where(User.id.in_(user_ids), User.is_active))
    return set(rows.all())
