"""OpenID Connect sign-in against a provider on loopback that speaks the protocol
(tests/operators/oidc_provider.py): the authorization code flow with PKCE, the ID token's
signature checked against the provider's JWKS, state and nonce, and the role taken from
a claim."""

from __future__ import annotations

import html
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from fastapi.testclient import TestClient

from okno.app import create_app
from okno.web import i18n
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


def refused_with(client: TestClient, response: Any, code: str) -> None:
    """The browser is sent back to the sign-in page, which says why in Russian (the
    default language) rather than showing JSON."""
    assert response.status_code == 303, response.text
    assert response.headers["location"] == f"/login?reason={code}"
    page = client.get(response.headers["location"])
    assert page.status_code == 200
    assert html.escape(i18n.TEXTS[f"error.{code}"][0], quote=False) in page.text, page.text
    assert client.get("/api/v1/me").status_code == 401  # not signed in


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
    okno.cookies.clear()
    replay = okno.get(path, params=query, follow_redirects=False)
    refused_with(okno, replay, "oidc_state_mismatch")


def test_a_changed_state_is_refused(okno: TestClient) -> None:
    path, query = through_provider(okno)
    forged = okno.get(path, params={**query, "state": "attacker"}, follow_redirects=False)
    refused_with(okno, forged, "oidc_state_mismatch")
    okno.cookies.clear()  # another browser: no flow cookie at all
    alien = okno.get(path, params=query, follow_redirects=False)
    refused_with(okno, alien, "oidc_state_mismatch")


@pytest.mark.parametrize("misbehaviour", ["foreign_key", "wrong_nonce", "alg_none"])
def test_id_tokens_not_made_for_this_sign_in_are_refused(
    okno: TestClient, provider: oidc_provider.Provider, misbehaviour: str
) -> None:
    setattr(provider, misbehaviour, True)
    path, query = through_provider(okno)
    refused = okno.get(path, params=query, follow_redirects=False)
    refused_with(okno, refused, "oidc_failed")


def test_a_person_without_a_mapped_role_is_refused(
    okno: TestClient, provider: oidc_provider.Provider
) -> None:
    provider.person["realm_access"] = {"roles": ["offline_access"]}
    path, query = through_provider(okno)
    refused = okno.get(path, params=query, follow_redirects=False)
    refused_with(okno, refused, "oidc_no_role")
    # «У вашей корпоративной учётной записи нет роли в okno, обратитесь к администратору»


def test_the_login_of_a_local_account_is_not_taken_over(
    okno: TestClient, provider: oidc_provider.Provider
) -> None:
    provider.person["preferred_username"] = "root"  # the local admin's login
    path, query = through_provider(okno)
    refused = okno.get(path, params=query, follow_redirects=False)
    refused_with(okno, refused, "login_taken")


def test_without_settings_oidc_is_off(client: TestClient) -> None:
    off = client.get("/api/v1/auth/oidc/login", follow_redirects=False)
    assert off.status_code == 404 and off.json()["code"] == "oidc_disabled"
    assert "/api/v1/auth/oidc/login" not in client.get("/login").text


def test_returns_from_the_provider_are_rate_limited_per_address(
    provider: oidc_provider.Provider, tmp_path: Path, database_url: str, staff: Staff
) -> None:
    settings = make_settings(
        tmp_path,
        database_url,
        oidc_issuer=provider.issuer,
        oidc_client_id=oidc_provider.CLIENT_ID,
        oidc_client_secret=oidc_provider.CLIENT_SECRET,
        oidc_role_claim="realm_access.roles",
        oidc_role_map={"okno-supervisor": "supervisor"},
        signin_per_ip_per_minute=2,
    )
    with TestClient(create_app(settings)) as client:
        callback = "/api/v1/auth/oidc/callback"
        for _ in range(2):
            answer = client.get(callback, params={"error": "access_denied"}, follow_redirects=False)
            refused_with(client, answer, "oidc_failed")
        limited = client.get(callback, params={"code": "x", "state": "y"}, follow_redirects=False)
        refused_with(client, limited, "rate_limited")
        # the same bucket as password sign-ins from this address
        password = client.post(
            "/api/v1/auth/token", json={"login": "anna", "password": "correct-horse-1"}
        )
        assert password.status_code == 429
        root_settings = make_settings(tmp_path, database_url)
    with TestClient(create_app(root_settings)) as admin:
        token = admin.post(
            "/api/v1/auth/token", json={"login": "root", "password": "correct-horse-1"}
        ).json()["access_token"]
        entries = admin.get(
            "/api/v1/audit",
            params={"action": "auth.sign_in"},
            headers={"Authorization": f"Bearer {token}"},
        ).json()["entries"]
    reasons = [(e["outcome"], e["details"].get("reason")) for e in reversed(entries)]
    assert reasons[:4] == [
        ("failure", "oidc_failed"),
        ("failure", "oidc_failed"),
        ("denied", "rate_limited"),
        ("denied", "rate_limited"),
    ]


def test_the_sign_in_page_explains_a_directory_outage_in_either_language(
    client: TestClient,
) -> None:
    page = client.get("/login", params={"reason": "directory_unavailable"})
    assert "Каталог (LDAP / Active Directory) не отвечает, попробуйте позже" in page.text
    client.get("/lang/en")
    page = client.get("/login", params={"reason": "directory_unavailable"})
    assert "The directory (LDAP / Active Directory) does not answer" in page.text
    # only known codes are shown: the address bar cannot put words on the page
    forged = client.get("/login", params={"reason": "Ваш пароль: позвоните 8-800"})
    assert "8-800" not in forged.text
