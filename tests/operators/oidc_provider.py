"""A small OpenID Connect provider on loopback that speaks the real protocol, for okno's
OIDC sign-in tests: discovery, the authorization endpoint (it signs in the configured
person at once and redirects back with a code), the token endpoint (checks the client's
secret, the redirect URI and the PKCE verifier) and the JWKS with its RSA key; ID tokens
are RS256 JWTs. Knobs let a test make it misbehave (sign with a foreign key, drop the
nonce, use ``alg: none``)."""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa

CLIENT_ID = "okno"
CLIENT_SECRET = "okno-client-secret"
REALM = "/realms/staff"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


@dataclass
class Provider:
    port: int
    person: dict[str, Any] = field(default_factory=dict)
    # misbehaviour switches
    foreign_key: bool = False
    wrong_nonce: bool = False
    alg_none: bool = False
    codes: dict[str, dict[str, Any]] = field(default_factory=dict)
    token_requests: list[dict[str, str]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.other_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.kid = "key-1"

    @property
    def issuer(self) -> str:
        return f"http://127.0.0.1:{self.port}{REALM}"

    def jwks(self) -> dict[str, Any]:
        numbers = self.key.public_key().public_numbers()
        n = numbers.n.to_bytes((numbers.n.bit_length() + 7) // 8, "big")
        e = numbers.e.to_bytes((numbers.e.bit_length() + 7) // 8, "big")
        return {
            "keys": [
                {"kty": "RSA", "use": "sig", "alg": "RS256", "kid": self.kid, "n": _b64(n), "e": _b64(e)}
            ]
        }

    def discovery(self) -> dict[str, Any]:
        return {
            "issuer": self.issuer,
            "authorization_endpoint": f"{self.issuer}/protocol/openid-connect/auth",
            "token_endpoint": f"{self.issuer}/protocol/openid-connect/token",
            "jwks_uri": f"{self.issuer}/protocol/openid-connect/certs",
            "response_types_supported": ["code"],
            "code_challenge_methods_supported": ["S256"],
            "id_token_signing_alg_values_supported": ["RS256"],
        }

    def id_token(self, grant: dict[str, Any]) -> str:
        now = int(time.time())
        claims = {
            "iss": self.issuer,
            "aud": CLIENT_ID,
            "sub": self.person.get("sub", "user-1"),
            "iat": now,
            "exp": now + 300,
            "nonce": "someone-else" if self.wrong_nonce else grant["nonce"],
            **{k: v for k, v in self.person.items() if k != "sub"},
        }
        if self.alg_none:
            return jwt.encode(claims, None, algorithm="none")
        key = self.other_key if self.foreign_key else self.key
        return jwt.encode(claims, key, algorithm="RS256", headers={"kid": self.kid})


def _handler(provider: Provider) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

        def _json(self, status: int, body: dict[str, Any]) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:
            url = urlsplit(self.path)
            query = {k: v[0] for k, v in parse_qs(url.query).items()}
            if url.path == f"{REALM}/.well-known/openid-configuration":
                return self._json(200, provider.discovery())
            if url.path == f"{REALM}/protocol/openid-connect/certs":
                return self._json(200, provider.jwks())
            if url.path == f"{REALM}/protocol/openid-connect/auth":
                if query.get("client_id") != CLIENT_ID or query.get("response_type") != "code":
                    return self._json(400, {"error": "invalid_request"})
                if query.get("code_challenge_method") != "S256" or not query.get("code_challenge"):
                    return self._json(400, {"error": "invalid_request", "detail": "PKCE"})
                code = secrets.token_urlsafe(16)
                provider.codes[code] = query
                target = query["redirect_uri"] + "?" + urlencode(
                    {"code": code, "state": query.get("state", "")}
                )
                self.send_response(302)
                self.send_header("Location", target)
                self.end_headers()
                return None
            return self._json(404, {"error": "not_found"})

        def do_POST(self) -> None:
            url = urlsplit(self.path)
            length = int(self.headers.get("Content-Length", "0"))
            form = {k: v[0] for k, v in parse_qs(self.rfile.read(length).decode()).items()}
            provider.token_requests.append(form)
            if url.path != f"{REALM}/protocol/openid-connect/token":
                return self._json(404, {"error": "not_found"})
            expected = "Basic " + base64.b64encode(f"{CLIENT_ID}:{CLIENT_SECRET}".encode()).decode()
            if self.headers.get("Authorization") != expected:
                return self._json(401, {"error": "invalid_client"})
            grant = provider.codes.pop(form.get("code", ""), None)
            if form.get("grant_type") != "authorization_code" or grant is None:
                return self._json(400, {"error": "invalid_grant"})
            if form.get("redirect_uri") != grant["redirect_uri"]:
                return self._json(400, {"error": "invalid_grant", "detail": "redirect_uri"})
            verifier = form.get("code_verifier", "")
            if _b64(hashlib.sha256(verifier.encode()).digest()) != grant["code_challenge"]:
                return self._json(400, {"error": "invalid_grant", "detail": "PKCE"})
            return self._json(
                200,
                {
                    "access_token": secrets.token_urlsafe(16),
                    "token_type": "Bearer",
                    "expires_in": 300,
                    "id_token": provider.id_token(grant),
                },
            )

    return Handler


class RunningProvider:
    def __init__(self, provider: Provider, server: ThreadingHTTPServer) -> None:
        self.provider = provider
        self.server = server

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def start(port: int, person: dict[str, Any]) -> RunningProvider:
    provider = Provider(port=port, person=person)
    server = ThreadingHTTPServer(("127.0.0.1", port), _handler(provider))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return RunningProvider(provider, server)
