"""LDAP / Active Directory sign-in: find the user with the service account, bind as the
user with the password they typed, and read their groups to give them a role and a team.

okno never stores a directory user's password: each sign-in asks the directory again, so a
password changed or an account disabled there takes effect at the next sign-in. The calls
are blocking (ldap3) and run in a thread.

A sign-in is two calls: :func:`find` (the service account looks the person up: their DN,
the login as the directory spells it, name and groups) and :func:`password_ok` (a bind as
that DN). Between them the caller checks the okno account of that DN (switched off?
locked?), so a lockout holds however the login is typed.

``ldaps://`` and StartTLS check the server's certificate (CERT_REQUIRED, against
OKNO_LDAP_CA_FILE or the system's CAs) and that it names the host of OKNO_LDAP_URL: a
machine in the middle must not collect the passwords people type.
"""

from __future__ import annotations

import math
import re
import ssl
from dataclasses import dataclass, field

import structlog
from ldap3 import NONE, SUBTREE, Connection, Server, Tls
from ldap3.core.exceptions import LDAPException, LDAPStartTLSError
from ldap3.utils.conv import escape_filter_chars
from ldap3.utils.dn import safe_dn

from okno.errors import BadGateway
from okno.settings import Settings

log = structlog.get_logger("okno.directory")
# When a person is in several mapped groups, the first role here wins.
ROLE_STRENGTH = (
    "admin",
    "security_officer",
    "auditor",
    "supervisor",
    "senior_operator",
    "operator",
)


# The attributes a user filter compares with the typed login: ``(uid={login})`` -> uid
_LOGIN_ATTRIBUTE = re.compile(r"\(\s*([A-Za-z][A-Za-z0-9-]*)\s*=\s*\{login\}\s*\)")


@dataclass(frozen=True)
class DirectoryUser:
    dn: str
    login: str  # as the directory spells it (``petrov`` when ``PETROV`` was typed)
    name: str
    groups: list[str] = field(default_factory=list)


def enabled(settings: Settings) -> bool:
    return bool(settings.ldap_url)


def norm_dn(dn: str) -> str:
    """A DN in one spelling (case and spaces after commas do not matter in LDAP)."""
    try:
        return safe_dn(dn).lower()
    except (LDAPException, ValueError, TypeError):
        return ",".join(part.strip() for part in dn.split(",")).lower()


def strongest_role(values: list[str], mapping: dict[str, str], *, dn_keys: bool) -> str | None:
    """The strongest role any value maps to (values are group DNs or claim values)."""
    keyed = {(norm_dn(k) if dn_keys else k): v for k, v in mapping.items()}
    found = {
        keyed[(norm_dn(v) if dn_keys else v)]
        for v in values
        if (norm_dn(v) if dn_keys else v) in keyed
    }
    for role in ROLE_STRENGTH:
        if role in found:
            return role
    return None


def team_of(groups: list[str], mapping: dict[str, str]) -> str | None:
    """The team of the first mapped group (in the order the mapping lists them)."""
    mine = {norm_dn(g) for g in groups}
    for group, team in mapping.items():
        if norm_dn(group) in mine:
            return team
    return None


def _timeout(settings: Settings) -> int:
    # ldap3 packs socket timeouts as whole seconds
    return max(1, math.ceil(settings.ldap_timeout_seconds))


def _tls(settings: Settings) -> Tls | None:
    if not (settings.ldap_url.lower().startswith("ldaps://") or settings.ldap_start_tls):
        return None
    # ldap3's own default is CERT_NONE: anyone in the middle could read the passwords
    return Tls(validate=ssl.CERT_REQUIRED, ca_certs_file=settings.ldap_ca_file or None)


def _server(settings: Settings) -> Server:
    return Server(
        settings.ldap_url, get_info=NONE, connect_timeout=_timeout(settings), tls=_tls(settings)
    )


def _connection(
    settings: Settings, server: Server, user: str | None, password: str | None
) -> Connection:
    conn = Connection(
        server,
        user=user,
        password=password,
        receive_timeout=_timeout(settings),
        raise_exceptions=False,
    )
    conn.open()
    if settings.ldap_start_tls and not server.ssl and not conn.start_tls():
        # never go on in clear text: the next thing sent is a password
        raise LDAPStartTLSError("the directory did not start TLS")
    return conn


def _unavailable(exc: Exception) -> BadGateway:
    log.error("directory.unavailable", error=type(exc).__name__, detail=str(exc)[:300])
    return BadGateway(
        "the directory (LDAP) does not answer; try again later", code="directory_unavailable"
    )


def _canonical_login(settings: Settings, login: str, attributes: dict[str, object]) -> str:
    """The login as the directory spells it: the value of the filter's login attribute
    that matches what was typed (ignoring letter case), else what was typed."""
    for name in _LOGIN_ATTRIBUTE.findall(settings.ldap_user_filter):
        value = attributes.get(name)
        for item in value if isinstance(value, list) else [value]:
            if item and str(item).casefold() == login.casefold():
                return str(item)
    return login


def find(settings: Settings, login: str) -> DirectoryUser | None:
    """The one directory user the login names (with their groups), else None. Raises
    BadGateway (502 ``directory_unavailable``) when the directory cannot be asked."""
    login_attributes = _LOGIN_ATTRIBUTE.findall(settings.ldap_user_filter)
    try:
        service = _connection(
            settings,
            _server(settings),
            settings.ldap_bind_dn or None,
            settings.ldap_bind_password or None,
        )
        try:
            if not service.bind():
                log.error("directory.service_bind_failed", result=service.result.get("description"))
                raise BadGateway(
                    "the directory refused okno's service account", code="directory_unavailable"
                )
            query = settings.ldap_user_filter.replace("{login}", escape_filter_chars(login))
            service.search(
                settings.ldap_user_base,
                query,
                search_scope=SUBTREE,
                attributes=["cn", "displayName", "memberOf", *login_attributes],
                size_limit=2,
            )
            entries = [e for e in service.response or [] if e.get("type") == "searchResEntry"]
            if len(entries) != 1:
                return None  # unknown, or ambiguous: never guess which person it is
            entry = entries[0]
            dn = str(entry["dn"])
            attributes = entry.get("attributes", {})
            groups = _groups(settings, service, dn, attributes)
        finally:
            service.unbind()
    except (LDAPException, OSError) as exc:
        raise _unavailable(exc) from None
    name = _first(attributes.get("displayName")) or _first(attributes.get("cn")) or login
    return DirectoryUser(
        dn=dn, login=_canonical_login(settings, login, attributes), name=name, groups=groups
    )


def password_ok(settings: Settings, dn: str, password: str) -> bool:
    """Whether the password binds as ``dn``. Raises BadGateway when the directory cannot
    be asked."""
    if not password:
        # an LDAP bind with an empty password is an *unauthenticated* bind and succeeds
        return False
    try:
        conn = _connection(settings, _server(settings), dn, password)
        try:
            return bool(conn.bind())
        finally:
            conn.unbind()
    except (LDAPException, OSError) as exc:
        raise _unavailable(exc) from None


def authenticate(settings: Settings, login: str, password: str) -> DirectoryUser | None:
    """The directory user when the login exists there and the password binds, else None."""
    if not password:
        return None
    found = find(settings, login)
    if found is None or not password_ok(settings, found.dn, password):
        return None
    return found


def _first(value: object) -> str:
    if isinstance(value, list):
        return str(value[0]) if value else ""
    return str(value) if value else ""


def _groups(
    settings: Settings, conn: Connection, dn: str, attributes: dict[str, object]
) -> list[str]:
    if not settings.ldap_group_base:
        member_of = attributes.get("memberOf") or []
        return [str(g) for g in member_of] if isinstance(member_of, list) else [str(member_of)]
    query = settings.ldap_group_filter.replace("{dn}", escape_filter_chars(dn))
    conn.search(settings.ldap_group_base, query, search_scope=SUBTREE, attributes=[])
    return [str(e["dn"]) for e in conn.response or [] if e.get("type") == "searchResEntry"]


__all__ = [
    "DirectoryUser",
    "authenticate",
    "enabled",
    "find",
    "password_ok",
    "strongest_role",
    "team_of",
]
