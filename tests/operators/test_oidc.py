"""OpenID Connect sign-in against a provider on loopback that speaks the protocol
(tests/operators/oidc_provider.py): the authorization code flow with PKCE, the ID token's
signature checked against the provider's JWKS, state and nonce, and the role taken from
a claim."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from fastapi.testclient import TestClient

from okno.app import create_app
from tests import services
from tests.builders import Staff
from tests.conftest import make_settings
from tests.operators import oidc_provider

KEYCLOAK_PERSON = {
    "sub": "f3a1-77",
    "preferred_username": "ivanova",
    "name": "Мария Иванова",
    "realm_access": {"roles": ["offline_access", "okno-supervisor"]},
    "okno_team": "Карты",
}


@pytest.fixture
def provider() -> Iterator[oidc_provider.Provider]:
    running = oidc_provider.start(services.free_port(), dict(KEYCLOAK_PERSON))
    yield running.provider
    running.stop()


@pytest.fixture
def okno(
    provider: oidc_provider.Provider, tmp_path: Path, database_url: str, staff: Staff
) -> Iterator[TestClient]:
    settings = make_settings(
        tmp_path,
        database_url,
        oidc_issuer=provider.issuer,
        oidc_client_id=oidc_provider.CLIENT_ID,
        oidc_client_secret=oidc_provider.CLIENT_SECRET,
        oidc_role_claim="realm_access.roles",
        oidc_role_map={"okno-supervisor": "supervisor", "okno-admin": "admin"},
        oidc_team_claim="okno_team",
    )
    with TestClient(create_app(settings)) as client:
        yield client


def through_provider(client: TestClient, next_path: str = "/") -> tuple[str, dict[str, str]]:
    """Start the sign-in at okno, let the provider answer; the callback path and query."""
    started = client.get(
        "/api/v1/auth/oidc/login", params={"next": next_path}, follow_redirects=False
    )
    assert started.status_code == 303, started.text
    location = started.headers["location"]
    query = parse_qs(urlsplit(location).query)
    assert query["code_challenge_method"] == ["S256"] and query["nonce"] and query["state"]
    answer = httpx.get(location, follow_redirects=False)
    assert answer.status_code == 302, answer.text
    back = urlsplit(answer.headers["location"])
    return back.path, {k: v[0] for k, v in parse_qs(back.query).items()}


def test_sign_in_through_the_provider_gives_a_session_with_the_mapped_role(
    okno: TestClient, provider: oidc_provider.Provider
) -> None:
    login_page = okno.get("/login")
    assert "/api/v1/auth/oidc/login" in login_page.text  # the page offers the button
    path, query = through_provider(okno, "/supervisor")
    done = okno.get(path, params=query, follow_redirects=False)
    assert done.status_code == 200, done.text
    assert 'url=/supervisor"' in done.text  # moves on to where the person was going
    me = okno.get("/api/v1/me")
    assert me.status_code == 200, me.text
    body: dict[str, Any] = me.json()
    assert body["login"] == "ivanova" and body["role"] == "supervisor"
    assert body["name"] == "Мария Иванова" and body["team_id"] is not None
    # the code was redeemed with the PKCE verifier, and only once
    assert provider.token_requests[-1]["code_verifier"]
    replay = okno.get(path, params=query, follow_redirects=False)
    assert replay.status_code in (401, 502) or replay.json()["code"] in ("oidc_failed",)


def test_a_changed_state_is_refused(okno: TestClient) -> None:
    path, query = through_provider(okno)
    forged = okno.get(path, params={**query, "state": "attacker"}, follow_redirects=False)
    assert forged.status_code == 401 and forged.json()["code"] == "oidc_state_mismatch"
    okno.cookies.clear()  # another browser: no flow cookie at all
    alien = okno.get(path, params=query, follow_redirects=False)
    assert alien.status_code == 401 and alien.json()["code"] == "oidc_state_mismatch"


@pytest.mark.parametrize("misbehaviour", ["foreign_key", "wrong_nonce", "alg_none"])
def test_id_tokens_not_made_for_this_sign_in_are_refused(
    okno: TestClient, provider: oidc_provider.Provider, misbehaviour: str
) -> None:
    setattr(provider, misbehaviour, True)
    path, query = through_provider(okno)
    refused = okno.get(path, params=query, follow_redirects=False)
    assert refused.status_code == 401, refused.text
    assert refused.json()["code"] == "oidc_failed"
    assert okno.get("/api/v1/me").status_code == 401


def test_a_person_without_a_mapped_role_is_refused(
    okno: TestClient, provider: oidc_provider.Provider
) -> None:
    provider.person["realm_access"] = {"roles": ["offline_access"]}
    path, query = through_provider(okno)
    refused = okno.get(path, params=query, follow_redirects=False)
    assert refused.status_code == 403 and refused.json()["code"] == "oidc_no_role"


def test_the_login_of_a_local_account_is_not_taken_over(
    okno: TestClient, provider: oidc_provider.Provider
) -> None:
    provider.person["preferred_username"] = "root"  # the local admin's login
    path, query = through_provider(okno)
    refused = okno.get(path, params=query, follow_redirects=False)
    assert refused.status_code == 409 and refused.json()["code"] == "login_taken"


def test_without_settings_oidc_is_off(client: TestClient) -> None:
    off = client.get("/api/v1/auth/oidc/login", follow_redirects=False)
    assert off.status_code == 404 and off.json()["code"] == "oidc_disabled"
    assert "/api/v1/auth/oidc/login" not in client.get("/login").text
