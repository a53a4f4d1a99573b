"""LDAP directory sign-in against a real OpenLDAP server (Debian's slapd), started on a
free loopback port with its configuration and database in the test's folder and loaded
with people and groups by ``ldapadd``: the bind, the group → role and team mapping, a
role refreshed from the directory, and the failures."""

from __future__ import annotations

import json
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from okno.app import create_app
from tests import services
from tests.builders import Staff, bearer
from tests.conftest import make_settings

SUFFIX = "dc=bank,dc=test"
ROOT_DN = f"cn=admin,{SUFFIX}"
ROOT_PW = "slapd-root-secret"
GROUPS = f"ou=groups,{SUFFIX}"
OPERATORS = f"cn=okno-operators,{GROUPS}"
ADMINS = f"cn=okno-admins,{GROUPS}"
CARDS_TEAM = f"cn=team-cards,{GROUPS}"
OTHERS = f"cn=accounting,{GROUPS}"

DATA = f"""
dn: {SUFFIX}
objectClass: dcObject
objectClass: organization
o: Bank
dc: bank

dn: ou=people,{SUFFIX}
objectClass: organizationalUnit
ou: people

dn: ou=groups,{SUFFIX}
objectClass: organizationalUnit
ou: groups

dn: uid=petrov,ou=people,{SUFFIX}
objectClass: inetOrgPerson
uid: petrov
cn: Пётр Петров
sn: Петров
displayName: Пётр Петров
userPassword: Directory-Pass-1

dn: uid=chief,ou=people,{SUFFIX}
objectClass: inetOrgPerson
uid: chief
cn: Chief
sn: Chief
userPassword: Directory-Pass-2

dn: uid=clerk,ou=people,{SUFFIX}
objectClass: inetOrgPerson
uid: clerk
cn: Clerk
sn: Clerk
userPassword: Directory-Pass-3

dn: {OPERATORS}
objectClass: groupOfNames
cn: okno-operators
member: uid=petrov,ou=people,{SUFFIX}
member: uid=chief,ou=people,{SUFFIX}

dn: {ADMINS}
objectClass: groupOfNames
cn: okno-admins
member: uid=chief,ou=people,{SUFFIX}

dn: {CARDS_TEAM}
objectClass: groupOfNames
cn: team-cards
member: uid=petrov,ou=people,{SUFFIX}

dn: {OTHERS}
objectClass: groupOfNames
cn: accounting
member: uid=clerk,ou=people,{SUFFIX}
"""


def _wait_for_port(port: int, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"slapd exited: {log.read_text(errors='replace')[-2000:]}")
        try:
            with socket.create_connection(("127.0.0.1", port), 0.2):
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError("slapd did not start listening in 15 s")


@pytest.fixture(scope="module")
def slapd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A running slapd with the people and groups above; yields its ldap:// URL."""
    slapd_bin, ldapadd = services.require_slapd()
    folder = tmp_path_factory.mktemp("slapd")
    (folder / "db").mkdir()
    config = folder / "slapd.conf"
    config.write_text(
        "\n".join(
            [
                "include /etc/ldap/schema/core.schema",
                "include /etc/ldap/schema/cosine.schema",
                "include /etc/ldap/schema/inetorgperson.schema",
                "modulepath /usr/lib/ldap",
                "moduleload back_mdb",
                "moduleload memberof",
                f"pidfile {folder / 'slapd.pid'}",
                "database mdb",
                f'suffix "{SUFFIX}"',
                f'rootdn "{ROOT_DN}"',
                f"rootpw {ROOT_PW}",
                f"directory {folder / 'db'}",
                "maxsize 10485760",
                # passwords are readable by nobody; the rest by anyone signed in (okno's
                # searches bind as the service account)
                "access to attrs=userPassword by anonymous auth by * none",
                "access to * by users read by * none",
                "overlay memberof",
                "",
            ]
        )
    )
    port = services.free_port()
    url = f"ldap://127.0.0.1:{port}"
    log = folder / "slapd.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [slapd_bin, "-f", str(config), "-h", f"{url}/", "-d", "0"],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        _wait_for_port(port, process, log)
        (folder / "data.ldif").write_text(DATA.strip() + "\n", encoding="utf-8")
        subprocess.run(
            [ldapadd, "-x", "-H", url, "-D", ROOT_DN, "-w", ROOT_PW, "-f", str(folder / "data.ldif")],
            check=True,
            capture_output=True,
            timeout=30,
        )
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()


def ldap_modify(url: str, ldif: str) -> None:
    subprocess.run(
        ["ldapmodify", "-x", "-H", url, "-D", ROOT_DN, "-w", ROOT_PW],
        input=ldif.encode(),
        check=True,
        capture_output=True,
        timeout=30,
    )


def ldap_settings(tmp_path: Path, database_url: str, url: str, **extra: Any) -> Any:
    values: dict[str, Any] = {
        "ldap_url": url,
        "ldap_bind_dn": ROOT_DN,
        "ldap_bind_password": ROOT_PW,
        "ldap_user_base": f"ou=people,{SUFFIX}",
        "ldap_group_base": GROUPS,
        "ldap_role_groups": {OPERATORS: "operator", ADMINS: "admin"},
        "ldap_team_groups": {CARDS_TEAM: "Карты"},
        "lockout_attempts": 3,
    }
    values.update(extra)
    return make_settings(tmp_path, database_url, **values)


def token_for(client: TestClient, login: str, password: str) -> Any:
    return client.post("/api/v1/auth/token", json={"login": login, "password": password})


def test_a_directory_user_signs_in_with_the_role_and_team_of_their_groups(
    slapd: str, tmp_path: Path, database_url: str, staff: Staff
) -> None:
    settings = ldap_settings(tmp_path, database_url, slapd)
    with TestClient(create_app(settings)) as client:
        response = token_for(client, "petrov", "Directory-Pass-1")
        assert response.status_code == 200, response.text
        me = client.get("/api/v1/me", headers=bearer(response.json()["access_token"])).json()
        assert me["login"] == "petrov" and me["role"] == "operator"
        assert me["name"] == "Пётр Петров"
        teams = {t["id"]: t["name"] for t in client.get(
            "/api/v1/teams", headers=bearer(response.json()["access_token"])
        ).json()["teams"]}
        assert teams[me["team_id"]] == "Карты"

        # in both groups: the stronger role wins
        chief = token_for(client, "chief", "Directory-Pass-2")
        assert chief.status_code == 200
        assert client.get("/api/v1/me", headers=bearer(chief.json()["access_token"])).json()[
            "role"
        ] == "admin"
        # local accounts still sign in with okno's own passwords
        assert token_for(client, "anna", "correct-horse-1").status_code == 200


def test_wrong_directory_passwords_and_unmapped_people_are_refused(
    slapd: str, tmp_path: Path, database_url: str, staff: Staff
) -> None:
    settings = ldap_settings(tmp_path, database_url, slapd)
    with TestClient(create_app(settings)) as client:
        wrong = token_for(client, "petrov", "not-the-password")
        unknown = token_for(client, "nobody", "not-the-password")
        assert wrong.status_code == unknown.status_code == 401
        assert wrong.json() == unknown.json()
        assert wrong.json()["code"] == "bad_credentials"
        clerk = token_for(client, "clerk", "Directory-Pass-3")
        assert clerk.status_code == 403 and clerk.json()["code"] == "directory_no_role"
        # filter injection does not find anybody
        assert token_for(client, "*", "Directory-Pass-1").status_code == 401
        assert token_for(client, "petrov)(uid=*", "Directory-Pass-1").status_code == 401


def test_group_changes_in_the_directory_apply_at_the_next_sign_in(
    slapd: str, tmp_path: Path, database_url: str, staff: Staff
) -> None:
    settings = ldap_settings(tmp_path, database_url, slapd)
    with TestClient(create_app(settings)) as client:
        first = token_for(client, "petrov", "Directory-Pass-1")
        assert first.status_code == 200
        ldap_modify(
            slapd,
            f"dn: {ADMINS}\nchangetype: modify\nadd: member\nmember: uid=petrov,ou=people,{SUFFIX}\n",
        )
        try:
            again = token_for(client, "petrov", "Directory-Pass-1")
            me = client.get("/api/v1/me", headers=bearer(again.json()["access_token"])).json()
            assert me["role"] == "admin"
        finally:
            ldap_modify(
                slapd,
                f"dn: {ADMINS}\nchangetype: modify\ndelete: member\n"
                f"member: uid=petrov,ou=people,{SUFFIX}\n",
            )
        ldap_modify(
            slapd,
            f"dn: {OPERATORS}\nchangetype: modify\ndelete: member\n"
            f"member: uid=petrov,ou=people,{SUFFIX}\n",
        )
        try:
            removed = token_for(client, "petrov", "Directory-Pass-1")
            assert removed.status_code == 403 and removed.json()["code"] == "directory_no_role"
            # what they still held was ended with the role
            old = client.get("/api/v1/me", headers=bearer(first.json()["access_token"]))
            assert old.status_code == 401 and old.json()["code"] == "token_revoked"
        finally:
            ldap_modify(
                slapd,
                f"dn: {OPERATORS}\nchangetype: modify\nadd: member\n"
                f"member: uid=petrov,ou=people,{SUFFIX}\n",
            )


def test_member_of_is_used_without_a_group_base(
    slapd: str, tmp_path: Path, database_url: str, staff: Staff
) -> None:
    settings = ldap_settings(tmp_path, database_url, slapd, ldap_group_base="")
    with TestClient(create_app(settings)) as client:
        chief = token_for(client, "chief", "Directory-Pass-2")
        assert chief.status_code == 200, chief.text
        me = client.get("/api/v1/me", headers=bearer(chief.json()["access_token"])).json()
        assert me["role"] == "admin"


def test_repeated_failures_lock_a_directory_account_too(
    slapd: str, tmp_path: Path, database_url: str, staff: Staff
) -> None:
    settings = ldap_settings(tmp_path, database_url, slapd)
    with TestClient(create_app(settings)) as client:
        assert token_for(client, "petrov", "Directory-Pass-1").status_code == 200
        for _ in range(3):
            assert token_for(client, "petrov", "bad-password-9").status_code == 401
        assert token_for(client, "petrov", "Directory-Pass-1").status_code == 401
        # and the password lives in the directory: okno will not change it
        change = client.post(
            "/api/v1/auth/password",
            json={"login": "chief", "password": "Directory-Pass-2", "new_password": "New-Pass-777x"},
        )
        assert change.status_code == 409 and change.json()["code"] == "external_password"


def test_an_unreachable_directory_is_a_clear_502(
    tmp_path: Path, database_url: str, staff: Staff
) -> None:
    closed = f"ldap://127.0.0.1:{services.free_port()}"
    settings = ldap_settings(tmp_path, database_url, closed, ldap_timeout_seconds=1)
    with TestClient(create_app(settings)) as client:
        response = token_for(client, "petrov", "Directory-Pass-1")
        assert response.status_code == 502, response.text
        assert response.json()["code"] == "directory_unavailable"
        assert token_for(client, "anna", "correct-horse-1").status_code == 200


def test_role_maps_with_unknown_roles_are_refused_at_start(tmp_path: Path) -> None:
    from okno.settings import SettingsError, load_settings

    with pytest.raises(SettingsError, match="OKNO_LDAP_ROLE_GROUPS"):
        load_settings(data_dir=tmp_path, ldap_role_groups=json.loads('{"cn=x": "king"}'))
