"""The audit log: append-only, each entry chained to the one before by a sha256 hash.

Who may call what
-----------------
Any domain records what a person did with :func:`record`, inside the transaction of the
action itself, so the action and its entry commit together or not at all::

    from okno.security import audit

    await audit.record(
        session,
        action=audit.CUSTOMER_VIEWED,
        actor=audit.Actor.of(user, ip=audit.client_ip(request)),
        object_type="customer",
        object_id=customer.id,
    )

An action that was *refused* (a failed sign-in, a lockout, a denied read) has no
transaction of its own that commits: record it with :func:`record_separately`, which opens
one. ``details`` is a small flat mapping of counts, names of fields, codes; never message
text, names, phone numbers (strings are passed through the PII masker anyway).

The chain
---------
Entry ``n`` stores ``prev_hash`` (the hash of entry ``n-1``; 64 zeros for the first) and
``hash = sha256(prev_hash + "\\n" + canonical JSON of its fields)``. Sequence numbers have
no gaps. Appends are serialised by the single ``audit_state`` row, locked ``FOR UPDATE``
on PostgreSQL (SQLite has one writer anyway) from the append until commit, so two
transactions never both take number ``n``; the entries are appended just before commit,
after every other commit hook (``before_commit(..., last=True)``), so that lock is taken
last by every transaction (one lock order: no deadlock) and held only until commit. ``audit_state`` also keeps the
head (the newest entry, so cutting off the tail is noticed) and the base (the last entry
retention removed after it reached the SIEM; verification starts after it).

:func:`verify` walks the chain and names the first entry that is changed, missing or out
of order (``okno audit verify``).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, or_, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from okno.db.base import utcnow
from okno.db.session import before_commit
from okno.security import pii
from okno.security.audit_models import AuditEntry, AuditState

if TYPE_CHECKING:
    from fastapi import Request

    from okno.db.session import Database
    from okno.operators.models import User

GENESIS = "0" * 64
STATE_ID = 1

# ---------------------------------------------------------------- the actions okno records
# Sign-in (outcome: success, failure, locked, denied)
AUTH_SIGN_IN = "auth.sign_in"
AUTH_SIGN_OUT = "auth.sign_out"
AUTH_LOCKED = "auth.locked"
# Staff accounts, roles, teams, tokens
USER_CREATED = "user.created"
USER_UPDATED = "user.updated"
USER_ROLE_CHANGED = "user.role_changed"
TEAM_CREATED = "team.created"
TEAM_UPDATED = "team.updated"
PERMISSION_CHANGED = "permission.changed"
# Personal data
CUSTOMER_VIEWED = "customer.viewed"
CUSTOMER_HISTORY_VIEWED = "customer.history_viewed"
PII_UNMASKED = "pii.unmasked"
# Data leaving okno
EXPORT = "export"
REPORT_VIEWED = "report.viewed"
ATTACHMENT_DOWNLOADED = "attachment.downloaded"
RECORDING_DOWNLOADED = "recording.downloaded"
# The antivirus: a file blocked (infected, or never checked), or a staff upload refused
ATTACHMENT_BLOCKED = "attachment.blocked"
# Configuration
CHANNEL_CREATED = "channel.created"
CHANNEL_UPDATED = "channel.updated"
CHANNEL_CREDENTIALS_CHANGED = "channel.credentials_changed"
# The log and retention themselves
AUDIT_SEARCHED = "audit.searched"
RETENTION_RUN = "retention.run"
AUDIT_PURGED = "audit.purged"

OUTCOMES = ("success", "failure", "denied", "locked")
_MAX_DETAIL_KEYS = 20
_MAX_DETAIL_TEXT = 200


@dataclass(frozen=True)
class Actor:
    """Who did it: a staff user (id, login, role) and the address they came from. A
    failed sign-in has no user id, only the login that was tried; ``system`` jobs have
    neither."""

    user_id: int | None = None
    login: str = ""
    role: str = ""
    ip: str = ""

    @classmethod
    def of(cls, user: User | None, *, ip: str = "") -> Actor:
        if user is None:
            return cls(ip=ip)
        return cls(user_id=user.id, login=user.login, role=user.role, ip=ip)


SYSTEM = Actor(login="system", role="system")


def client_ip(request: Request | None) -> str:
    """The client's address (uvicorn already applied X-Forwarded-For from trusted proxies)."""
    if request is None or request.client is None:
        return ""
    return request.client.host or ""


def actor_of(user: User | None, request: Request | None) -> Actor:
    """The actor of an HTTP request."""
    return Actor.of(user, ip=client_ip(request))


@dataclass
class _Pending:
    at: datetime
    actor: Actor
    action: str
    object_type: str
    object_id: str
    outcome: str
    details: dict[str, Any]


# ---------------------------------------------------------------- canonical form and hash


def _clean(text: Any, limit: int) -> str:
    return str(text if text is not None else "").replace("\x00", "")[:limit]


def _detail_value(value: Any) -> Any:
    """Only small JSON scalars survive unchanged: floats become text (JSONB would print a
    large float as an integer and the hash would no longer match), strings are masked."""
    if value is None or isinstance(value, bool | int):
        return value
    if isinstance(value, list | tuple | set):
        items = sorted(value, key=str) if isinstance(value, set) else list(value)
        return [_detail_value(v) for v in items[:50]]
    return pii.mask(_clean(value, _MAX_DETAIL_TEXT))


def clean_details(details: Mapping[str, Any] | None) -> dict[str, Any]:
    """The details as stored: at most 20 keys, scalar or list values, PII masked."""
    out: dict[str, Any] = {}
    for key, value in list((details or {}).items())[:_MAX_DETAIL_KEYS]:
        if isinstance(value, Mapping):
            value = json.dumps(value, sort_keys=True, default=str)
        out[_clean(key, 50)] = _detail_value(value)
    return out


def _utc_text(at: datetime) -> str:
    return at.astimezone(UTC).isoformat(timespec="microseconds")


def canonical(fields: Mapping[str, Any]) -> bytes:
    """The byte form an entry's hash covers (every stored field but the two hashes)."""
    body = {
        "seq": int(fields["seq"]),
        "at": _utc_text(fields["at"]),
        "actor_id": fields["actor_id"],
        "actor_login": fields["actor_login"],
        "actor_role": fields["actor_role"],
        "ip": fields["ip"],
        "action": fields["action"],
        "object_type": fields["object_type"],
        "object_id": fields["object_id"],
        "outcome": fields["outcome"],
        "details": fields["details"] or {},
    }
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def chain_hash(prev_hash: str, fields: Mapping[str, Any]) -> str:
    """sha256 over the previous entry's hash and this entry's canonical form."""
    return hashlib.sha256(prev_hash.encode() + b"\n" + canonical(fields)).hexdigest()


def entry_fields(entry: AuditEntry) -> dict[str, Any]:
    """The hashed fields of a stored entry."""
    return {
        "seq": entry.seq,
        "at": entry.at,
        "actor_id": entry.actor_id,
        "actor_login": entry.actor_login,
        "actor_role": entry.actor_role,
        "ip": entry.ip,
        "action": entry.action,
        "object_type": entry.object_type,
        "object_id": entry.object_id,
        "outcome": entry.outcome,
        "details": entry.details or {},
    }


def entry_dict(entry: AuditEntry) -> dict[str, Any]:
    """An entry as JSON (the API, the SIEM line, the export)."""
    out = entry_fields(entry)
    out["at"] = _utc_text(entry.at)
    out["prev_hash"] = entry.prev_hash
    out["hash"] = entry.hash
    return out


# ---------------------------------------------------------------- writing


async def record(
    session: AsyncSession,
    *,
    action: str,
    actor: Actor | None = None,
    object_type: str = "",
    object_id: str | int | None = "",
    outcome: str = "success",
    details: Mapping[str, Any] | None = None,
) -> None:
    """Add an entry to this transaction's audit log; it is chained and written right
    before the transaction commits, and vanishes with it on rollback.

    ``action``: one of the constants above (``noun.past_verb``); ``outcome``: success,
    failure, denied or locked; ``details``: small, flat, without personal data.
    """
    if outcome not in OUTCOMES:
        raise ValueError(f"audit outcome must be one of {OUTCOMES}, not {outcome!r}")
    who = actor or SYSTEM
    pending: list[_Pending] = session.info.setdefault("audit_pending", [])
    pending.append(
        _Pending(
            at=utcnow(),
            actor=Actor(
                user_id=who.user_id,
                login=_clean(who.login, 200),
                role=_clean(who.role, 50),
                ip=_clean(who.ip, 64),
            ),
            action=_clean(action, 100),
            object_type=_clean(object_type, 50),
            object_id=_clean(object_id, 100),
            outcome=outcome,
            details=clean_details(details),
        )
    )
    before_commit(session, "audit.append", _append_hook, last=True)


async def record_separately(db: Database, **entry: Any) -> None:
    """Record in a transaction of its own: for refused actions (failed sign-in, lockout,
    denied access) whose own transaction rolls back or never writes."""
    async with db.transaction() as session:
        await record(session, **entry)


async def lock_state(session: AsyncSession) -> AuditState:
    """The chain's state row, locked until commit (PostgreSQL); created when missing,
    continuing from the newest stored entry."""
    query = (
        select(AuditState)
        .where(AuditState.id == STATE_ID)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    state = (await session.scalars(query)).first()
    if state is not None:
        return state
    last = (
        await session.scalars(select(AuditEntry).order_by(AuditEntry.seq.desc()).limit(1))
    ).first()
    values = {
        "id": STATE_ID,
        "head_seq": last.seq if last else 0,
        "head_hash": last.hash if last else "",
        "base_seq": 0,
        "base_hash": "",
    }
    insert = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    await session.execute(insert(AuditState).values(**values).on_conflict_do_nothing())
    return (await session.scalars(query)).one()


async def _append_hook(session: AsyncSession) -> None:
    await append_pending(session)


async def append_pending(session: AsyncSession) -> int:
    """Chain and insert the entries recorded in this transaction; returns how many.

    Called by the commit hook; call it directly to see the entries before commit.
    Holds the chain lock (PostgreSQL) until the transaction ends.
    """
    pending: list[_Pending] = session.info.get("audit_pending", [])
    if not pending:
        return 0
    state = await lock_state(session)
    written = 0
    while pending:
        item = pending.pop(0)
        seq = state.head_seq + 1
        prev = state.head_hash or GENESIS
        fields = {
            "seq": seq,
            "at": item.at,
            "actor_id": item.actor.user_id,
            "actor_login": item.actor.login,
            "actor_role": item.actor.role,
            "ip": item.actor.ip,
            "action": item.action,
            "object_type": item.object_type,
            "object_id": item.object_id,
            "outcome": item.outcome,
            "details": item.details,
        }
        digest = chain_hash(prev, fields)
        session.add(AuditEntry(**fields, prev_hash=prev, hash=digest))
        state.head_seq = seq
        state.head_hash = digest
        written += 1
    await session.flush()
    return written


# ---------------------------------------------------------------- verifying


@dataclass(frozen=True)
class Break:
    """The first place the chain does not hold: the entry's number and what is wrong."""

    seq: int
    problem: str  # changed, missing, reordered
    detail: str


@dataclass
class Verification:
    ok: bool
    count: int = 0
    first_seq: int | None = None
    last_seq: int | None = None
    base_seq: int = 0
    broken: Break | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "ok": self.ok,
            "count": self.count,
            "first_seq": self.first_seq,
            "last_seq": self.last_seq,
            "base_seq": self.base_seq,
        }
        if self.broken:
            out["broken"] = {
                "seq": self.broken.seq,
                "problem": self.broken.problem,
                "detail": self.broken.detail,
            }
        return out


async def verify(session: AsyncSession, *, batch: int = 2000) -> Verification:
    """Walk the whole chain from the retention checkpoint to the head; stop at the first
    entry that is changed (its content or link no longer matches), missing (a gap, or the
    newest entries cut off) or reordered (chained after a different entry)."""
    state = await session.get(AuditState, STATE_ID)
    base_seq = state.base_seq if state else 0
    prev_hash = (state.base_hash if state and state.base_seq else "") or GENESIS
    result = Verification(ok=True, base_seq=base_seq)
    expected = base_seq + 1
    after = base_seq
    while True:
        rows = list(
            (
                await session.scalars(
                    select(AuditEntry)
                    .where(AuditEntry.seq > after)
                    .order_by(AuditEntry.seq)
                    .limit(batch)
                )
            ).all()
        )
        if not rows:
            break
        for entry in rows:
            problem = await _check(session, entry, expected=expected, prev_hash=prev_hash)
            if problem is not None:
                result.ok = False
                result.broken = problem
                return result
            result.count += 1
            result.first_seq = result.first_seq or entry.seq
            result.last_seq = entry.seq
            prev_hash = entry.hash
            expected = entry.seq + 1
        after = rows[-1].seq
    if state is not None:
        last = result.last_seq or base_seq
        if state.head_seq > last:
            result.ok = False
            first_missing = last + 1
            span = (
                f"entry {first_missing}"
                if first_missing == state.head_seq
                else f"entries {first_missing}–{state.head_seq}"
            )
            result.broken = Break(
                first_missing,
                "missing",
                f"{span} were written but are gone (the newest entries were deleted)",
            )
        elif state.head_seq < last or (last > base_seq and state.head_hash != prev_hash):
            result.ok = False
            result.broken = Break(
                last,
                "changed",
                f"entry {last} is not the newest entry okno wrote (the head record says "
                f"{state.head_seq}): entries were added or changed outside okno",
            )
    return result


async def _check(
    session: AsyncSession, entry: AuditEntry, *, expected: int, prev_hash: str
) -> Break | None:
    if entry.seq != expected:
        span = (
            f"entry {expected} is"
            if entry.seq - 1 == expected
            else f"entries {expected}–{entry.seq - 1} are"
        )
        return Break(expected, "missing", f"{span} missing (deleted from the table)")
    if chain_hash(entry.prev_hash, entry_fields(entry)) != entry.hash:
        return Break(
            entry.seq,
            "changed",
            f"entry {entry.seq} was changed after it was written: its content no longer "
            "matches its hash",
        )
    if entry.prev_hash != prev_hash:
        other = (
            await session.scalars(select(AuditEntry.seq).where(AuditEntry.hash == entry.prev_hash))
        ).first()
        if other is not None:
            return Break(
                entry.seq,
                "reordered",
                f"entry {entry.seq} was chained after entry {other}, not after entry "
                f"{entry.seq - 1}",
            )
        return Break(
            entry.seq - 1 if entry.seq - 1 > 0 else entry.seq,
            "changed",
            f"entry {entry.seq - 1} was rewritten: entry {entry.seq} still points at its "
            "original hash",
        )
    return None


# ---------------------------------------------------------------- searching


@dataclass
class Page:
    entries: list[AuditEntry]
    next_cursor: int | None


async def search(
    session: AsyncSession,
    *,
    actor: str = "",
    action: str = "",
    object_ref: str = "",
    outcome: str = "",
    since: datetime | None = None,
    until: datetime | None = None,
    before_seq: int | None = None,
    limit: int = 50,
) -> Page:
    """Entries newest first. ``actor``: a login or a user id; ``action``: exact, or a prefix
    ending in ``.`` or ``*`` (``auth.``); ``object_ref``: ``type`` or ``type:id``
    (``customer:42``); ``[since, until)``; page on with ``before_seq`` = ``next_cursor``."""
    query = select(AuditEntry)
    if actor:
        if actor.isdigit():
            query = query.where(
                or_(AuditEntry.actor_id == int(actor), AuditEntry.actor_login == actor)
            )
        else:
            query = query.where(func.lower(AuditEntry.actor_login) == actor.lower())
    if action:
        if action.endswith(("*", ".")):
            prefix = action.rstrip("*")
            query = query.where(AuditEntry.action.startswith(prefix, autoescape=True))
        else:
            query = query.where(AuditEntry.action == action)
    if object_ref:
        kind, _, ident = object_ref.partition(":")
        query = query.where(AuditEntry.object_type == kind)
        if ident:
            query = query.where(AuditEntry.object_id == ident)
    if outcome:
        query = query.where(AuditEntry.outcome == outcome)
    if since is not None:
        query = query.where(AuditEntry.at >= since)
    if until is not None:
        query = query.where(AuditEntry.at < until)
    if before_seq is not None:
        query = query.where(AuditEntry.seq < before_seq)
    rows = list(
        (await session.scalars(query.order_by(AuditEntry.seq.desc()).limit(limit + 1))).all()
    )
    more = len(rows) > limit
    rows = rows[:limit]
    return Page(entries=rows, next_cursor=rows[-1].seq if more and rows else None)
