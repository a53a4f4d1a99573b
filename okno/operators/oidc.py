"""OpenID Connect sign-in (Keycloak, ADFS, any certified provider): the authorization code
flow with PKCE.

1. ``/api/v1/auth/oidc/login`` sends the browser to the provider's authorization endpoint
   with a random ``state``, ``nonce`` and PKCE ``code_challenge`` (S256); the three
   secrets travel in a short-lived signed HttpOnly cookie, never in okno's database.
2. The provider sends the browser back to ``/api/v1/auth/oidc/callback?code=&state=``.
   okno checks ``state`` against the cookie, redeems the code at the token endpoint with
   the PKCE verifier (and its client secret, when it has one), and checks the ID token:
   its signature against the provider's published keys (JWKS), issuer, audience, expiry
   and the ``nonce``.
3. The login, role and team come from the token's claims (OKNO_OIDC_* settings).

The provider's discovery document and keys are cached for an hour; an unknown key id
fetches the keys again once (the provider rotated them).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
from dataclasses import dataclass
from datetime import timedelta
from typing import Any
from urllib.parse import urlencode

import httpx
import jwt
import structlog

from okno.errors import BadGateway, Unauthorized
from okno.security import tokens
from okno.settings import Settings

log = structlog.get_logger("okno.oidc")
FLOW = "oidc_flow"  # the typ of the signed flow cookie
FLOW_COOKIE = "okno_oidc"
FLOW_MINUTES = 10
CACHE_SECONDS = 3600
ALGORITHMS = ["RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512"]

_discovery: dict[str, tuple[float, dict[str, Any]]] = {}
_jwks: dict[str, tuple[float, dict[str, Any]]] = {}


@dataclass(frozen=True)
class Started:
    url: str
    cookie: str


def enabled(settings: Settings) -> bool:
    return bool(settings.oidc_issuer and settings.oidc_client_id)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


async def _get_json(settings: Settings, url: str) -> dict[str, Any]:
    try:
        async with httpx.AsyncClient(timeout=settings.oidc_timeout_seconds) as client:
            response = await client.get(url)
        response.raise_for_status()
        data = response.json()
    except (httpx.HTTPError, ValueError) as exc:
        log.error("oidc.provider_unavailable", url=url, error=type(exc).__name__)
        raise BadGateway(
            "the sign-in provider does not answer; try again later", code="oidc_unavailable"
        ) from None
    if not isinstance(data, dict):
        raise BadGateway("the sign-in provider answered nonsense", code="oidc_unavailable")
    return data


async def discovery(settings: Settings) -> dict[str, Any]:
    """The provider's ``/.well-known/openid-configuration`` (cached)."""
    issuer = settings.oidc_issuer.rstrip("/")
    cached = _discovery.get(issuer)
    if cached and time.monotonic() - cached[0] < CACHE_SECONDS:
        return cached[1]
    doc = await _get_json(settings, issuer + "/.well-known/openid-configuration")
    for key in ("authorization_endpoint", "token_endpoint", "jwks_uri", "issuer"):
        if not isinstance(doc.get(key), str):
            raise BadGateway(f"the provider's discovery lacks {key}", code="oidc_unavailable")
    if doc["issuer"].rstrip("/") != issuer:
        raise BadGateway("the provider's discovery names another issuer", code="oidc_unavailable")
    _discovery[issuer] = (time.monotonic(), doc)
    return doc


async def start(
    settings: Settings, signing_key: str, *, redirect_uri: str, next_path: str
) -> Started:
    """Where to send the browser, and the flow cookie to set."""
    doc = await discovery(settings)
    state = secrets.token_urlsafe(24)
    nonce = secrets.token_urlsafe(24)
    verifier = secrets.token_urlsafe(48)
    challenge = _b64(hashlib.sha256(verifier.encode()).digest())
    params = {
        "response_type": "code",
        "client_id": settings.oidc_client_id,
        "redirect_uri": redirect_uri,
        "scope": settings.oidc_scopes,
        "state": state,
        "nonce": nonce,
        "code_challenge": challenge,
        "code_challenge_method": "S256",
    }
    sep = "&" if "?" in doc["authorization_endpoint"] else "?"
    cookie = tokens.issue(
        signing_key,
        typ=FLOW,
        subject="oidc",
        ttl=timedelta(minutes=FLOW_MINUTES),
        state=state,
        nonce=nonce,
        verifier=verifier,
        next=next_path,
    )
    return Started(url=doc["authorization_endpoint"] + sep + urlencode(params), cookie=cookie)


def read_flow(signing_key: str, cookie: str | None, state: str) -> dict[str, Any]:
    """The flow's secrets when the returned ``state`` is the one we sent."""
    if not cookie:
        raise Unauthorized(
            "the sign-in took too long or was started in another browser; start again",
            code="oidc_state_mismatch",
        )
    try:
        claims = tokens.verify(signing_key, cookie, typ=FLOW)
    except Unauthorized:
        raise Unauthorized(
            "the sign-in took too long; start again", code="oidc_state_mismatch"
        ) from None
    if not state or not hmac.compare_digest(str(claims.get("state", "")), state):
        raise Unauthorized("the sign-in response does not match", code="oidc_state_mismatch")
    return claims


async def _keys(settings: Settings, jwks_uri: str, *, refresh: bool) -> dict[str, Any]:
    cached = _jwks.get(jwks_uri)
    if cached and not refresh and time.monotonic() - cached[0] < CACHE_SECONDS:
        return cached[1]
    keys = await _get_json(settings, jwks_uri)
    _jwks[jwks_uri] = (time.monotonic(), keys)
    return keys


def _pick_key(jwks: dict[str, Any], kid: str | None, alg: str) -> jwt.PyJWK | None:
    for entry in jwks.get("keys", []) if isinstance(jwks.get("keys"), list) else []:
        if not isinstance(entry, dict) or entry.get("use", "sig") != "sig":
            continue
        if kid is not None and entry.get("kid") != kid:
            continue
        try:
            return jwt.PyJWK(entry, algorithm=entry.get("alg") or alg)
        except jwt.PyJWTError:
            continue
    return None


async def finish(
    settings: Settings, *, code: str, flow: dict[str, Any], redirect_uri: str
) -> dict[str, Any]:
    """Redeem the code and return the checked ID token's claims; 401 ``oidc_failed``."""
    doc = await discovery(settings)
    form = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": redirect_uri,
        "code_verifier": str(flow["verifier"]),
        "client_id": settings.oidc_client_id,
    }
    # client_secret_basic when okno is a confidential client; PKCE alone for a public one
    auth: httpx.Auth | None = None
    if settings.oidc_client_secret:
        auth = httpx.BasicAuth(settings.oidc_client_id, settings.oidc_client_secret)
    try:
        async with httpx.AsyncClient(timeout=settings.oidc_timeout_seconds, auth=auth) as client:
            response = await client.post(doc["token_endpoint"], data=form)
    except httpx.HTTPError as exc:
        log.error("oidc.token_unavailable", error=type(exc).__name__)
        raise BadGateway("the sign-in provider does not answer", code="oidc_unavailable") from None
    try:
        body = response.json()
    except ValueError:
        body = {}
    if response.status_code != 200 or not isinstance(body, dict) or "id_token" not in body:
        log.warning(
            "oidc.code_refused",
            status=response.status_code,
            error=body.get("error") if isinstance(body, dict) else None,
        )
        raise Unauthorized("the sign-in provider refused the sign-in", code="oidc_failed")
    return await verify_id_token(settings, str(body["id_token"]), nonce=str(flow["nonce"]))


async def verify_id_token(settings: Settings, id_token: str, *, nonce: str) -> dict[str, Any]:
    """The claims of an ID token signed by the provider for okno, with this nonce."""
    doc = await discovery(settings)
    try:
        header = jwt.get_unverified_header(id_token)
    except jwt.PyJWTError:
        raise Unauthorized("the ID token is malformed", code="oidc_failed") from None
    alg = str(header.get("alg", ""))
    if alg not in ALGORITHMS:  # "none" and HS* (a key everybody knows) never pass
        raise Unauthorized(
            "the ID token is signed with an unaccepted algorithm", code="oidc_failed"
        )
    kid = header.get("kid")
    key = _pick_key(await _keys(settings, doc["jwks_uri"], refresh=False), kid, alg)
    if key is None:
        key = _pick_key(await _keys(settings, doc["jwks_uri"], refresh=True), kid, alg)
    if key is None:
        raise Unauthorized("the ID token's signing key is unknown", code="oidc_failed")
    try:
        claims: dict[str, Any] = jwt.decode(
            id_token,
            key,
            algorithms=[alg],
            audience=settings.oidc_client_id,
            issuer=doc["issuer"],
            options={"require": ["exp", "iat", "sub", "iss", "aud"]},
            leeway=30,
        )
    except jwt.PyJWTError as exc:
        log.warning("oidc.id_token_rejected", reason=type(exc).__name__)
        raise Unauthorized("the ID token is not valid", code="oidc_failed") from None
    if not hmac.compare_digest(str(claims.get("nonce", "")), nonce):
        raise Unauthorized("the ID token was not issued for this sign-in", code="oidc_failed")
    return claims


def claim(claims: dict[str, Any], path: str) -> Any:
    """A claim by dotted path (``realm_access.roles``)."""
    value: Any = claims
    for part in path.split("."):
        if not isinstance(value, dict):
            return None
        value = value.get(part)
    return value


def claim_values(claims: dict[str, Any], path: str) -> list[str]:
    value = claim(claims, path)
    if isinstance(value, str):
        return [value]
    if isinstance(value, list):
        return [str(v) for v in value]
    return []


def describe(claims: dict[str, Any]) -> str:
    """Short text of the token for debugging logs (no personal data)."""
    return json.dumps(sorted(claims))
