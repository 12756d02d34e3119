"""Single sign-on for the web pages: OpenID Connect authorisation code flow with PKCE.

How this works:

* On when ``oidc_issuer`` and ``oidc_client_id`` are set (``oidc_client_secret``
  for a confidential client; without it the client is public and PKCE alone
  binds the code).  The redirect URI is ``public_url + /login/oidc/callback``;
  register exactly that at the identity provider.
* ``/login/oidc`` reads the issuer's discovery document (cached), draws a
  ``state``, a ``nonce`` and a PKCE verifier, keeps them in a short-lived
  cookie signed with ``secret_key`` (HttpOnly, SameSite=Lax, path
  ``/login``, 10 minutes) and redirects to the authorisation endpoint.
* ``/login/oidc/callback`` checks the returned ``state`` against that cookie,
  exchanges the code at the token endpoint (Authlib's httpx client sends the
  verifier and the client credentials), and verifies the ID token as
  :meth:`api.security.TokenService.decode_id_token` says: signature from the
  issuer's JWKS, issuer, audience = client id, expiry on the injected clock,
  and the nonce.  Its ``email`` must belong to an active Vitalgate user who is
  not a hub, exactly as for OIDC bearer tokens; the user row decides practice
  and role.  Then the usual Vitalgate session cookie is set.
* Nothing from the provider is logged at INFO or above except the failure
  reason; the e-mail never is.
"""

from __future__ import annotations

import hmac
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import httpx
import jwt
from authlib.common.security import generate_token
from authlib.integrations.httpx_client import OAuth2Client
from authlib.oauth2.rfc6749.errors import OAuth2Error

from api.security import AuthError, TokenService, oidc_discovery

#: How long a started sign-in may take at the provider.
PENDING_TTL = timedelta(minutes=10)
#: Cookie holding the pending sign-in (state, nonce, PKCE verifier, next page).
PENDING_COOKIE = "vg_sso"
CALLBACK_PATH = "/login/oidc/callback"
_PENDING_AUDIENCE = "vitalgate-sso-pending"


class SsoError(Exception):
    """The sign-in cannot complete; the message is safe to log (no e-mail, no token)."""


class OidcWebLogin:
    """Starts and finishes the authorisation code flow for one configured client."""

    def __init__(self, *, issuer: str, client_id: str, client_secret: str | None,
                 redirect_uri: str, secret_key: str, tokens: TokenService,
                 clock: Callable[[], datetime],
                 discover: Callable[[str], dict[str, Any]] = oidc_discovery) -> None:
        self.issuer = issuer.rstrip("/")
        self.client_id = client_id
        self._client_secret = client_secret
        self.redirect_uri = redirect_uri
        self._secret = secret_key
        self._tokens = tokens
        self._clock = clock
        self._discover = discover
        self._config: dict[str, Any] | None = None

    def _endpoints(self) -> tuple[str, str]:
        if self._config is None:  # cached after the first success; retried after a failure
            self._config = self._discover(self.issuer)
        try:
            return (str(self._config["authorization_endpoint"]),
                    str(self._config["token_endpoint"]))
        except KeyError as exc:
            raise AuthError(f"OIDC discovery document lacks {exc.args[0]}") from exc

    def _client(self) -> OAuth2Client:
        return OAuth2Client(
            client_id=self.client_id, client_secret=self._client_secret,
            token_endpoint_auth_method="client_secret_basic" if self._client_secret else "none",
            redirect_uri=self.redirect_uri, scope="openid email",
            code_challenge_method="S256", timeout=10)

    def start(self, next_page: str) -> tuple[str, str, int]:
        """The provider URL to redirect to, the pending-cookie value and its max age (s)."""
        auth_url, _ = self._endpoints()
        state, nonce, verifier = generate_token(32), generate_token(32), generate_token(64)
        with self._client() as client:
            url, _ = client.create_authorization_url(auth_url, state=state,
                                                     code_verifier=verifier, nonce=nonce)
        now = self._clock()
        pending = jwt.encode({"aud": _PENDING_AUDIENCE, "st": state, "nc": nonce, "cv": verifier,
                              "nx": next_page, "exp": int((now + PENDING_TTL).timestamp())},
                             self._secret, algorithm="HS256")
        return url, pending, int(PENDING_TTL.total_seconds())

    def finish(self, pending: str | None, state: str | None,
               code: str | None) -> tuple[dict[str, Any], str]:
        """Verified ID-token claims and the page to go to; :class:`SsoError` otherwise."""
        if not pending:
            raise SsoError("no sign-in in progress (cookie missing or expired)")
        try:
            started = jwt.decode(pending, self._secret, algorithms=["HS256"],
                                 audience=_PENDING_AUDIENCE, options={"verify_exp": False})
        except jwt.PyJWTError as exc:
            raise SsoError(f"pending sign-in cookie invalid: {type(exc).__name__}") from exc
        if float(started["exp"]) < self._clock().timestamp():
            raise SsoError("sign-in took too long")
        if not state or not hmac.compare_digest(str(started["st"]), state):
            raise SsoError("state does not match the sign-in in progress")
        if not code:
            raise SsoError("no authorisation code")
        _, token_url = self._endpoints()
        try:
            with self._client() as client:
                token = client.fetch_token(token_url, grant_type="authorization_code",
                                           code=code, code_verifier=str(started["cv"]))
        except OAuth2Error as exc:
            raise SsoError(f"token endpoint refused the code: {exc.error}") from exc
        except (httpx.HTTPError, ValueError) as exc:  # transport, or not JSON
            raise SsoError(f"token endpoint unreachable or invalid: {type(exc).__name__}") \
                from exc
        id_token = token.get("id_token")
        if not isinstance(id_token, str):
            raise SsoError("token response has no ID token")
        try:
            claims = self._tokens.decode_id_token(id_token, client_id=self.client_id,
                                                  nonce=str(started["nc"]))
        except AuthError as exc:
            raise SsoError(f"ID token refused: {exc}") from exc
        return claims, str(started["nx"])
