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
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from okno.app import create_app
from tests import services
from tests.builders import Staff, bearer, staff_token
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


@contextmanager
def running_slapd(
    folder: Path, listen: list[str], extra_config: list[str] | None = None
) -> Iterator[None]:
    """slapd with the people and groups above, listening on ``listen`` (the first URL is
    where it is loaded), its configuration and database in ``folder``."""
    slapd_bin, ldapadd = services.require_slapd()
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
                *(extra_config or []),
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
    log = folder / "slapd.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [slapd_bin, "-f", str(config), "-h", " ".join(f"{u}/" for u in listen), "-d", "0"],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        for url in listen:
            _wait_for_port(int(url.rsplit(":", 1)[1]), process, log)
        (folder / "data.ldif").write_text(DATA.strip() + "\n", encoding="utf-8")
        subprocess.run(
            [
                ldapadd,
                "-x",
                "-H",
                listen[0],
                "-D",
                ROOT_DN,
                "-w",
                ROOT_PW,
                "-f",
                str(folder / "data.ldif"),
            ],
            check=True,
            capture_output=True,
            timeout=30,
        )
        yield
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()


@pytest.fixture(scope="module")
def slapd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A running slapd with the people and groups above; yields its ldap:// URL."""
    url = f"ldap://127.0.0.1:{services.free_port()}"
    with running_slapd(tmp_path_factory.mktemp("slapd"), [url]):
        yield url


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


def auth_log(client: TestClient, login: str) -> list[tuple[str, str, str]]:
    """What the security officer's audit search shows for a login, oldest first:
    (action, outcome, reason)."""
    response = client.get(
        "/api/v1/audit",
        params={"actor": login, "action": "auth.", "limit": 200},
        headers=bearer(staff_token(client, "root")),
    )
    assert response.status_code == 200, response.text
    return [
        (e["action"], e["outcome"], str(e["details"].get("reason", "")))
        for e in reversed(response.json()["entries"])
    ]


def test_a_lock_holds_whatever_letter_case_the_login_is_typed_in(
    slapd: str, tmp_path: Path, database_url: str, staff: Staff
) -> None:
    settings = ldap_settings(tmp_path, database_url, slapd)
    with TestClient(create_app(settings)) as client:
        first = token_for(client, "petrov", "Directory-Pass-1")
        assert first.status_code == 200
        petrov = client.get("/api/v1/me", headers=bearer(first.json()["access_token"])).json()
        # wrong passwords in other spellings count against the same account...
        for spelling in ("PETROV", "Petrov", "pEtRoV"):
            assert token_for(client, spelling, "bad-password-9").status_code == 401
        # ...and the lock holds in every spelling, the right password included
        for spelling in ("PETROV", "Petrov", "petrov"):
            refused = token_for(client, spelling, "Directory-Pass-1")
            assert refused.status_code == 401, refused.text
            assert refused.json()["code"] == "bad_credentials"
        root = bearer(staff_token(client, "root"))
        state = client.get(f"/api/v1/users/{petrov['id']}/sign-in", headers=root).json()
        assert state["locked"] and state["failed_attempts"] == 3
        assert auth_log(client, "petrov")[1:] == [
            ("auth.sign_in", "failure", "directory_password"),
            ("auth.sign_in", "failure", "directory_password"),
            ("auth.sign_in", "failure", "directory_password"),
            ("auth.locked", "locked", ""),
            ("auth.sign_in", "locked", "locked"),
            ("auth.sign_in", "locked", "locked"),
            ("auth.sign_in", "locked", "locked"),
        ]
        unlocked = client.post(f"/api/v1/users/{petrov['id']}/unlock", headers=root)
        assert unlocked.status_code == 200
        again = token_for(client, "PETROV", "Directory-Pass-1")
        assert again.status_code == 200, again.text
        me = client.get("/api/v1/me", headers=bearer(again.json()["access_token"])).json()
        assert me["id"] == petrov["id"] and me["login"] == "petrov"


def test_the_okno_login_is_spelt_as_in_the_directory(
    slapd: str, tmp_path: Path, database_url: str, staff: Staff
) -> None:
    settings = ldap_settings(tmp_path, database_url, slapd)
    with TestClient(create_app(settings)) as client:
        first = token_for(client, "CHIEF", "Directory-Pass-2")
        assert first.status_code == 200, first.text
        me = client.get("/api/v1/me", headers=bearer(first.json()["access_token"])).json()
        assert me["login"] == "chief"
        again = token_for(client, "Chief", "Directory-Pass-2")
        assert (
            client.get("/api/v1/me", headers=bearer(again.json()["access_token"])).json()["id"]
            == me["id"]
        )
        users = client.get("/api/v1/users", headers=bearer(staff_token(client, "root"))).json()
        assert [u["login"] for u in users["users"] if u["login"].lower() == "chief"] == ["chief"]


def test_an_okno_password_cannot_be_set_on_a_directory_account(
    slapd: str, tmp_path: Path, database_url: str, staff: Staff
) -> None:
    settings = ldap_settings(tmp_path, database_url, slapd)
    with TestClient(create_app(settings)) as client:
        signed_in = token_for(client, "petrov", "Directory-Pass-1")
        petrov = client.get("/api/v1/me", headers=bearer(signed_in.json()["access_token"])).json()
        root = bearer(staff_token(client, "root"))
        patched = client.patch(
            f"/api/v1/users/{petrov['id']}", json={"password": "Okno-Own-Pass-77"}, headers=root
        )
        assert patched.status_code == 409, patched.text
        assert patched.json()["code"] == "external_password"
        # nothing changed: the directory's password still signs in, okno's never did
        assert token_for(client, "petrov", "Okno-Own-Pass-77").status_code == 401
        assert token_for(client, "petrov", "Directory-Pass-1").status_code == 200
        # other changes to the account still work
        renamed = client.patch(f"/api/v1/users/{petrov['id']}", json={"capacity": 3}, headers=root)
        assert renamed.status_code == 200 and renamed.json()["capacity"] == 3


# --- TLS: ldaps:// and StartTLS check the directory's certificate ------------------------


def _certificates(folder: Path) -> tuple[Path, Path, Path]:
    """A CA, and a certificate it signed for ``localhost`` (only): (ca, cert, key)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    now = datetime.now(UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Bank Test CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(hours=1))
        .not_valid_after(now + timedelta(days=2))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), False)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(hours=1))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), False
        )
        .sign(ca_key, hashes.SHA256())
    )
    paths = folder / "ca.pem", folder / "server.pem", folder / "server.key"
    paths[0].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    paths[1].write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    paths[2].write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return paths


@dataclass(frozen=True)
class TlsDirectory:
    ldaps_port: int
    ldap_port: int  # plain, for StartTLS
    ca_file: Path


@pytest.fixture(scope="module")
def slapd_tls(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TlsDirectory]:
    """slapd with a certificate for ``localhost`` from a private CA, on ldaps:// and on
    ldap:// with StartTLS."""
    folder = tmp_path_factory.mktemp("slapd-tls")
    ca, cert, key = _certificates(folder)
    ldap_port, ldaps_port = services.free_port(), services.free_port()
    listen = [f"ldap://127.0.0.1:{ldap_port}", f"ldaps://127.0.0.1:{ldaps_port}"]
    tls = [
        f"TLSCACertificateFile {ca}",
        f"TLSCertificateFile {cert}",
        f"TLSCertificateKeyFile {key}",
    ]
    with running_slapd(folder, listen, tls):
        yield TlsDirectory(ldaps_port=ldaps_port, ldap_port=ldap_port, ca_file=ca)


@pytest.mark.parametrize("mode", ["ldaps", "start_tls"])
def test_the_directory_certificate_is_checked(
    slapd_tls: TlsDirectory, tmp_path: Path, database_url: str, staff: Staff, mode: str
) -> None:
    def settings_for(host: str, **extra: Any) -> Any:
        if mode == "ldaps":
            url = f"ldaps://{host}:{slapd_tls.ldaps_port}"
        else:
            url, extra = f"ldap://{host}:{slapd_tls.ldap_port}", {**extra, "ldap_start_tls": True}
        return ldap_settings(tmp_path, database_url, url, ldap_timeout_seconds=3, **extra)

    trusted = settings_for("localhost", ldap_ca_file=str(slapd_tls.ca_file))
    with TestClient(create_app(trusted)) as client:
        ok = token_for(client, "petrov", "Directory-Pass-1")
        assert ok.status_code == 200, ok.text

    # a certificate from a CA okno was not told to trust: no password is sent to it
    untrusted = settings_for("localhost")
    with TestClient(create_app(untrusted)) as client:
        refused = token_for(client, "petrov", "Directory-Pass-1")
        assert refused.status_code == 502, refused.text
        assert refused.json()["code"] == "directory_unavailable"
        assert token_for(client, "anna", "correct-horse-1").status_code == 200

    # the right CA, but the certificate is not for the host okno was told to reach
    wrong_name = settings_for("127.0.0.1", ldap_ca_file=str(slapd_tls.ca_file))
    with TestClient(create_app(wrong_name)) as client:
        refused = token_for(client, "petrov", "Directory-Pass-1")
        assert refused.status_code == 502, refused.text
        assert refused.json()["code"] == "directory_unavailable"


def test_a_missing_ca_file_is_refused_at_start(tmp_path: Path) -> None:
    from okno.settings import SettingsError, load_settings

    with pytest.raises(SettingsError, match="OKNO_LDAP_CA_FILE"):
        load_settings(data_dir=tmp_path, ldap_ca_file=str(tmp_path / "no-such-ca.pem"))
