"""A small OpenID provider on a loopback port, for the OIDC tests.

It speaks real HTTP (``http.server`` in a thread), so Vitalgate's discovery,
JWKS fetch and code exchange run as they would against a real provider:

* ``/.well-known/openid-configuration`` and ``/jwks`` (RS256 key ``k1``);
* ``/authorize``: the authorisation endpoint.  It checks the client, the
  registered redirect URI, ``response_type=code``, ``scope`` with ``openid``
  and an S256 PKCE challenge, then "signs in" :attr:`account` without a
  screen and redirects back with a code (or with ``error=`` when
  :attr:`deny` is set);
* ``/token``: the code exchange.  It checks the client's credentials (HTTP
  Basic for a confidential client, ``client_id`` alone for a public one), the
  code (once only), the redirect URI and the PKCE verifier, and answers an ID
  token with the nonce of the authorisation request.

Tests change :attr:`id_token_claims` to forge a bad token (wrong audience,
nonce, expiry...) and read :attr:`token_requests` to see what was sent.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa

from tests.support.http import LocalServer, QuietHandler


class OidcProvider:
    """See the module doc.  ``clock`` stamps the ID tokens (the app's injected clock);
    ``redirect_uri`` and ``clock`` may be set after start (once the app's port is known).
    """

    def __init__(self, *, clock: Callable[[], datetime] | None = None,
                 client_id: str = "vitalgate-web", client_secret: str | None = "s3cret",
                 redirect_uri: str = "", host_name: str = "127.0.0.1") -> None:
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(self.key.public_key()))
        jwk.update({"kid": "k1", "use": "sig", "alg": "RS256"})
        self.jwk = jwk
        self.clock = clock or (lambda: datetime.now(UTC))
        self.client_id = client_id
        self.client_secret = client_secret
        self.redirect_uri = redirect_uri
        #: E-mail of the person signed in at the provider (None: the subject has no e-mail).
        self.account: str | None = None
        #: Error code to answer at /authorize instead of a code (e.g. "access_denied").
        self.deny: str | None = None
        #: Merged into the next ID tokens (override or add claims).
        self.id_token_claims: dict[str, Any] = {}
        self.token_requests: list[dict[str, Any]] = []
        self._codes: dict[str, dict[str, str]] = {}
        provider = self

        class Handler(QuietHandler):
            def do_GET(self) -> None:
                path, _, query = self.path.partition("?")
                if path == "/.well-known/openid-configuration":
                    self.send_json(200, provider.discovery())
                elif path == "/jwks":
                    self.send_json(200, {"keys": [provider.jwk]})
                elif path == "/authorize":
                    self._authorize({k: v[0] for k, v in parse_qs(query).items()})
                else:
                    self.send_json(404, {"error": "not_found"})

            def do_POST(self) -> None:
                if self.path != "/token":
                    self.send_json(404, {"error": "not_found"})
                    return
                length = int(self.headers.get("Content-Length", "0"))
                form = {k: v[0] for k, v in parse_qs(self.rfile.read(length).decode()).items()}
                status, body = provider.exchange(form, self.headers.get("Authorization"))
                self.send_json(status, body)

            def _authorize(self, q: dict[str, str]) -> None:
                status, location = provider.authorize(q)
                if location is None:
                    self.send_json(status, {"error": "invalid_request"})
                    return
                self.send_response(status)
                self.send_header("Location", location)
                self.send_header("Content-Length", "0")
                self.end_headers()

        self._server = LocalServer(Handler, host_name=host_name)
        self.url = self._server.url

    def discovery(self) -> dict[str, Any]:
        """The OpenID configuration document."""
        return {"issuer": self.url, "jwks_uri": self.url + "/jwks",
                "authorization_endpoint": self.url + "/authorize",
                "token_endpoint": self.url + "/token",
                "response_types_supported": ["code"],
                "code_challenge_methods_supported": ["S256"],
                "id_token_signing_alg_values_supported": ["RS256"]}

    def authorize(self, q: dict[str, str]) -> tuple[int, str | None]:
        """(status, redirect location) for an authorisation request; no location: refused."""
        if (q.get("client_id") != self.client_id or q.get("redirect_uri") != self.redirect_uri
                or q.get("response_type") != "code"
                or "openid" not in q.get("scope", "").split()
                or q.get("code_challenge_method") != "S256" or not q.get("code_challenge")):
            return 400, None
        back = {"state": q.get("state", "")}
        if self.deny:
            back["error"] = self.deny
        else:
            code = secrets.token_urlsafe(24)
            self._codes[code] = {"challenge": q["code_challenge"], "nonce": q.get("nonce", ""),
                                 "redirect_uri": q["redirect_uri"]}
            back["code"] = code
        return 302, f"{self.redirect_uri}?{urlencode(back)}"

    def exchange(self, form: dict[str, str], authorization: str | None) -> tuple[int, dict]:
        """(status, JSON body) of the token endpoint for a code-exchange request."""
        self.token_requests.append({"form": dict(form), "authorization": authorization})
        if self.client_secret is not None:
            expected = "Basic " + base64.b64encode(
                f"{self.client_id}:{self.client_secret}".encode()).decode()
            if authorization != expected:
                return 401, {"error": "invalid_client"}
        elif form.get("client_id") != self.client_id:
            return 401, {"error": "invalid_client"}
        if form.get("grant_type") != "authorization_code":
            return 400, {"error": "unsupported_grant_type"}
        grant = self._codes.pop(form.get("code", ""), None)  # a code works once
        if grant is None or form.get("redirect_uri") != grant["redirect_uri"]:
            return 400, {"error": "invalid_grant"}
        digest = hashlib.sha256(form.get("code_verifier", "").encode()).digest()
        if base64.urlsafe_b64encode(digest).rstrip(b"=").decode() != grant["challenge"]:
            return 400, {"error": "invalid_grant", "error_description": "PKCE verifier"}
        now = int(self.clock().timestamp())
        claims: dict[str, Any] = {"iss": self.url, "sub": "idp-user-1", "aud": self.client_id,
                                  "iat": now, "exp": now + 300, "nonce": grant["nonce"]}
        if self.account is not None:
            claims.update({"email": self.account, "email_verified": True})
        claims.update(self.id_token_claims)
        return 200, {"access_token": secrets.token_urlsafe(16), "token_type": "Bearer",
                     "expires_in": 300, "id_token": self.token(claims)}

    def token(self, claims: dict[str, object], key: object | None = None) -> str:
        """``claims`` signed RS256 with the provider's key (or ``key``)."""
        return jwt.encode(claims, key or self.key, algorithm="RS256", headers={"kid": "k1"})

    def close(self) -> None:
        """Stop serving."""
        self._server.close()


def follow_to_provider(location: str) -> str:
    """GET the provider's authorisation URL (a real HTTP request); return where it sends back."""
    import httpx

    assert urlsplit(location).hostname == "127.0.0.1"
    resp = httpx.get(location, follow_redirects=False, timeout=10)
    assert resp.status_code == 302, resp.text
    return resp.headers["location"]
