"""The one permission model: named permissions, which role holds which, and the checks.

Every staff route declares the permission it needs (``okno.http.require``, or
:func:`declare` on a handler that also serves non-staff callers); services ask
:func:`has` for finer rules (taking a colleague's dialog, editing a team's templates).
Nothing else looks at ``user.role``: a new role is a new row in :data:`ROLE_PERMISSIONS`,
and ``docs/security.md`` ("Roles and what each may do") is this table in words; a test
keeps the two in step and another calls every route as every role.

A principal signed in with an API token (role ``integration``) holds only the token's
scopes, which are a subset of what the integration role may be given.

Team scoping (who sees which dialogs) is the other half: :func:`sees_all_teams`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, Protocol, TypeVar

from okno.errors import Forbidden

F = TypeVar("F", bound=Callable[..., Any])

# name -> what it allows, in the words docs/security.md uses
PERMISSIONS: dict[str, str] = {
    "account.self": "see your own account (/api/v1/me)",
    "presence.set": "go online, take a break, go offline (receive dialogs)",
    "conversations.receive": "be given dialogs by routing",
    "conversations.read_team": (
        "read dialogs of your team, dialogs not yet given a team and dialogs assigned to you, "
        "with their messages and live events"
    ),
    "conversations.read_all": "read the dialogs of every team",
    "conversations.monitor": (
        "follow the messages of dialogs colleagues in your scope are serving (listen in)"
    ),
    "conversations.reply": (
        "reply, add internal notes, send files, take a waiting dialog, close, reopen, "
        "set topic and tags, mark read"
    ),
    "conversations.transfer": "hand a dialog you serve to a colleague or a team's queue",
    "conversations.reassign": (
        "take a dialog a colleague is serving, give dialogs to others, transfer or close "
        "dialogs others serve"
    ),
    "customers.read": "open customer cards, their history and search customers",
    "customers.edit": "change a customer's name, tags and attributes; add notes",
    "customers.merge": "merge two customer records that are one person",
    "templates.use": "use saved replies; keep personal ones",
    "templates.manage_team": "create and change your team's saved replies",
    "templates.manage_all": "create and change saved replies for everyone and every team",
    "bot.ask": "ask the bot and get question suggestions",
    "bot.read": "read the bot's knowledge base, flows, unanswered questions",
    "bot.manage": "change the bot's knowledge base, flows and branch directory",
    "routing.read": "read routing queues and their rules",
    "routing.manage": "create and change routing queues",
    "channels.read": "read the channel list and widget settings",
    "channels.edit_texts": "change a widget's greeting and info message",
    "channels.manage": "add and configure channels, webhooks and their credentials",
    "reports.read": "the live supervisor board and the reports",
    "exports.create": "export dialogs and reports to files",
    "users.read": "the staff directory: active colleagues and teams",
    "users.review": "every staff account, disabled ones included",
    "users.manage": "create accounts, change roles, teams, passwords; manage teams",
    "users.manage_admins": "give the admin role; change an admin's account",
    "tokens.read": "list API tokens (never their secrets)",
    "tokens.manage": "create and revoke API tokens",
    "ip_allowlist.read": "read the IP allow-lists for staff sign-in and API tokens",
    "ip_allowlist.manage": "change the IP allow-lists for staff sign-in and API tokens",
    "audit.read": "read and search the audit log",
    "audit.verify": "verify the audit log's hash chain",
    "retention.manage": "set retention periods and run retention jobs",
    "pii.unmask": "see personal data unmasked after the customer is verified",
}

_OPERATOR = frozenset(
    {
        "account.self",
        "presence.set",
        "conversations.receive",
        "conversations.read_team",
        "conversations.reply",
        "conversations.transfer",
        "customers.read",
        "customers.edit",
        # the operator finds the other half of a customer who wrote in two channels
        "customers.merge",
        "templates.use",
        "bot.ask",
        "users.read",
        "pii.unmask",
    }
)
_SENIOR = _OPERATOR | {"conversations.reassign", "templates.manage_team"}
_SUPERVISOR = (_SENIOR - {"conversations.receive"}) | {
    "conversations.monitor",
    "bot.read",
    "routing.read",
    "channels.read",
    "channels.edit_texts",
    "reports.read",
    "exports.create",
}
_SETTINGS_OVERVIEW = frozenset(
    {
        "routing.read",
        "channels.read",
        "bot.read",
        "users.read",
        "users.review",
        "tokens.read",
        "ip_allowlist.read",
    }
)
_SECURITY_OFFICER = _SETTINGS_OVERVIEW | {
    "account.self",
    "users.manage",
    "tokens.manage",
    "ip_allowlist.manage",
    "audit.read",
    "audit.verify",
    "retention.manage",
    "reports.read",
}
_AUDITOR = _SETTINGS_OVERVIEW | {"account.self", "audit.read", "audit.verify", "reports.read"}
# What an API token may be given (its scopes pick from these). Integrations read dialogs
# and customers (CRM, core banking), keep customers' attributes, feed the bot, read
# reports; they are never anyone's colleague in a dialog and never administer staff.
_INTEGRATION = frozenset(
    {
        "account.self",
        "conversations.read_team",
        "conversations.read_all",
        "customers.read",
        "customers.edit",
        "bot.ask",
        "bot.read",
        "bot.manage",
        "routing.read",
        "reports.read",
        "exports.create",
        "users.read",
    }
)

ROLE_PERMISSIONS: dict[str, frozenset[str]] = {
    "operator": _OPERATOR,
    "senior_operator": _SENIOR,
    "supervisor": _SUPERVISOR,
    # everything but being routed dialogs: an admin serves customers only by taking one
    "admin": frozenset(PERMISSIONS) - {"conversations.receive"},
    "security_officer": _SECURITY_OFFICER,
    "auditor": _AUDITOR,
    "integration": _INTEGRATION,
}
ROLES = tuple(ROLE_PERMISSIONS)
# Roles a person signs in with; ``integration`` acts only through API tokens.
INTERACTIVE_ROLES = tuple(r for r in ROLES if r != "integration")
# What a token's scopes may name.
TOKEN_SCOPES = _INTEGRATION


class Principal(Protocol):
    """Who is asking: a staff user, or the integration account of an API token (whose
    ``token_scopes`` then narrow the role's permissions)."""

    @property
    def role(self) -> str: ...

    @property
    def team_id(self) -> int | None: ...


def permissions_of(principal: Principal) -> frozenset[str]:
    """The permissions the principal holds now: its role's, narrowed by an API token's
    scopes when it signed in with one."""
    granted = ROLE_PERMISSIONS.get(principal.role, frozenset())
    scopes = getattr(principal, "token_scopes", None)
    if scopes is not None:
        granted = granted & frozenset(scopes)
    return granted


def has(principal: Principal, permission: str) -> bool:
    """Whether the principal holds ``permission`` (an unknown name is a programming error)."""
    if permission not in PERMISSIONS:
        raise KeyError(f"unknown permission {permission!r}")
    return permission in permissions_of(principal)


def check(principal: Principal, permission: str, what: str = "") -> None:
    """Refuse (403 ``forbidden_role``, naming the permission) unless the principal holds it."""
    if not has(principal, permission):
        raise Forbidden(
            f"your role may not {what or PERMISSIONS[permission]}",
            code="forbidden_role",
            permission=permission,
        )


def sees_all_teams(principal: Principal) -> bool:
    """The team rule's top: ``conversations.read_all`` sees every team's dialogs, and so
    does a supervisor (``conversations.monitor``) who has no team of their own: a team-less
    supervisor oversees the whole contact centre, a supervisor with a team only that team."""
    return has(principal, "conversations.read_all") or (
        principal.team_id is None and has(principal, "conversations.monitor")
    )


def sees_all_staff(principal: Principal) -> bool:
    """Whose presence and load figures the principal sees: everyone's for those who see all
    teams and for the roles that read no dialogs at all (security officer, auditor: figures
    carry no customer content); their own team's for the rest."""
    return sees_all_teams(principal) or (
        principal.team_id is None and not has(principal, "conversations.read_team")
    )


def role_has(role: str, permission: str) -> bool:
    """Whether ``role`` holds ``permission`` (for shaping what a role is shown)."""
    return permission in ROLE_PERMISSIONS.get(role, frozenset())


def roles_with(permission: str) -> tuple[str, ...]:
    """Every role holding ``permission`` (routing asks who can be given dialogs)."""
    return tuple(r for r, granted in ROLE_PERMISSIONS.items() if permission in granted)


def check_scopes(scopes: Iterable[str]) -> list[str]:
    """Scopes for an API token, sorted and without repeats; ValueError names the first one
    an API token may not hold."""
    out = sorted(set(scopes))
    for scope in out:
        if scope not in TOKEN_SCOPES:
            raise ValueError(scope)
    return out


def declare(permission: str) -> Callable[[F], F]:
    """Mark a handler that checks ``permission`` itself because it also serves callers who
    are not staff (a widget visitor) or is a page: the route × role test reads the mark."""
    if permission not in PERMISSIONS:
        raise KeyError(f"unknown permission {permission!r}")

    def mark(fn: F) -> F:
        fn.okno_permission = permission  # type: ignore[attr-defined]
        return fn

    return mark
