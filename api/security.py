"""Authentication: password hashes, bearer tokens, roles, login rate limit, CSRF.

How this works:

* Passwords (users and hub MQTT secrets) are argon2id hashes (argon2-cffi).
* Tokens are JWTs.  Vitalgate signs its own with HS256 and ``secret_key``
  (issuer ``vitalgate``) after a password login.  When ``oidc_issuer`` is set,
  tokens from that issuer are also accepted: the signing key comes from the
  issuer's JWKS (PyJWT's :class:`jwt.PyJWKClient`), the audience must be
  ``oidc_audience``.  Which path applies is chosen by the token's ``iss``
  claim, and each path pins its own algorithm list, so an HS256 token can
  never be verified with a public RSA key (algorithm confusion).
* Claims never decide the tenant or role: the token names a user (``sub`` for
  Vitalgate tokens, ``email`` for OIDC ones) and the user row in the store is
  the authority for practice, role and whether the account is active.
* The ``hub`` role is for MQTT only and is refused by every HTTP endpoint.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any, Protocol

import jwt
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from gateway.store.api_store import User

#: Lifetime of a Vitalgate-issued token: one coordinator shift.
TOKEN_TTL = timedelta(hours=8)
#: Issuer claim of Vitalgate-signed tokens.
LOCAL_ISSUER = "vitalgate"
#: Login rate limit: this many failures for one (username, client IP) ...
LOGIN_MAX_FAILURES = 5
#: ... within this window answer 429 until the window has passed.
LOGIN_WINDOW = timedelta(minutes=5)
#: Clock skew tolerated when checking ``exp``/``iat``/``nbf``.
LEEWAY_S = 30
#: Algorithms accepted from an OIDC issuer (asymmetric only).
OIDC_ALGORITHMS = ["RS256", "RS384", "RS512", "ES256", "ES384", "PS256"]
#: PyJWT options of every decode: these claims must be there, and expiry and
#: issue time are checked against the injected clock (``_check_times``), not PyJWT's.
_TIMES_CHECKED_BY_US: jwt.types.Options = {"require": ["exp", "iat", "iss"],
                                            "verify_exp": False, "verify_iat": False}


class Role(StrEnum):
    """Roles of users.  ``hub`` is MQTT-only."""

    ADMIN = "admin"
    PHYSICIAN = "physician"
    COORDINATOR = "coordinator"
    BILLER = "biller"
    HUB = "hub"


class AuthError(Exception):
    """The caller is not authenticated (HTTP 401)."""


class ForbiddenError(Exception):
    """The caller is authenticated but may not do this (HTTP 403)."""


@dataclass(frozen=True, slots=True)
class Principal:
    """The authenticated caller as every endpoint sees it."""

    user_id: str
    practice_id: str
    role: Role
    email: str
    token_id: str | None = None


_hasher = PasswordHasher()


def hash_password(password: str) -> str:
    """argon2id hash of ``password``."""
    return _hasher.hash(password)


def verify_password(password_hash: str | None, password: str) -> bool:
    """True when ``password`` matches ``password_hash`` (False for a missing hash)."""
    if not password_hash:
        # Spend comparable time so absent users are not distinguishable by timing.
        _hasher.hash(password)
        return False
    try:
        return _hasher.verify(password_hash, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def generate_secret(nbytes: int = 24) -> str:
    """A random URL-safe secret (hub MQTT passwords, CSRF nonces)."""
    return secrets.token_urlsafe(nbytes)


class JwksClient(Protocol):
    """What the OIDC path needs from a JWKS client (PyJWKClient fits)."""

    def get_signing_key_from_jwt(self, token: str) -> Any:
        """The key object (with ``.key``) that signed ``token``."""


def oidc_discovery(issuer: str) -> dict[str, Any]:
    """The issuer's OpenID configuration (``/.well-known/openid-configuration``).

    :class:`AuthError` when it cannot be read or names another issuer.
    """
    url = issuer.rstrip("/") + "/.well-known/openid-configuration"
    if not url.startswith(("https://", "http://")):
        raise AuthError("OIDC issuer must be an http(s) URL")
    try:
        with urllib.request.urlopen(url, timeout=5) as resp:  # noqa: S310 - scheme checked
            config = json.load(resp)
    except (OSError, ValueError) as exc:
        raise AuthError(f"OIDC issuer discovery failed: {type(exc).__name__}") from exc
    if not isinstance(config, dict) or \
            str(config.get("issuer", "")).rstrip("/") != issuer.rstrip("/"):
        raise AuthError("OIDC discovery document names another issuer")
    return config


def discover_jwks_client(issuer: str) -> jwt.PyJWKClient:
    """A PyJWKClient for ``issuer``'s ``jwks_uri`` from its OpenID configuration."""
    jwks_uri = oidc_discovery(issuer).get("jwks_uri")
    if not isinstance(jwks_uri, str):
        raise AuthError("OIDC discovery document has no jwks_uri")
    return jwt.PyJWKClient(jwks_uri, cache_keys=True, lifespan=300, timeout=5)


class TokenService:
    """Issues Vitalgate tokens and verifies Vitalgate or OIDC tokens."""

    def __init__(
        self,
        secret_key: str,
        clock: Callable[[], datetime],
        *,
        oidc_issuer: str | None = None,
        oidc_audience: str | None = None,
        jwks_client: JwksClient | None = None,
    ) -> None:
        self._secret = secret_key
        self._clock = clock
        self.oidc_issuer = oidc_issuer.rstrip("/") if oidc_issuer else None
        self.oidc_audience = oidc_audience
        self._jwks = jwks_client

    def issue(self, user: User, ttl: timedelta = TOKEN_TTL) -> tuple[str, int]:
        """A signed token for ``user`` and its lifetime in seconds."""
        now = self._clock()
        claims = {"iss": LOCAL_ISSUER, "sub": user.id, "prc": user.practice_id,
                  "role": user.role, "iat": int(now.timestamp()),
                  "exp": int((now + ttl).timestamp()), "jti": generate_secret(12)}
        return jwt.encode(claims, self._secret, algorithm="HS256"), int(ttl.total_seconds())

    def _jwks_client(self) -> JwksClient:
        if self._jwks is None:
            assert self.oidc_issuer is not None
            self._jwks = discover_jwks_client(self.oidc_issuer)
        return self._jwks

    def decode(self, token: str) -> dict[str, Any]:
        """Verified claims of ``token``; :class:`AuthError` when it is not acceptable."""
        now = self._clock()
        try:
            unverified = jwt.decode(token, options={"verify_signature": False})
            issuer = str(unverified.get("iss", "")).rstrip("/")
            if issuer == LOCAL_ISSUER:
                claims = jwt.decode(token, self._secret, algorithms=["HS256"],
                                    issuer=LOCAL_ISSUER, options=_TIMES_CHECKED_BY_US)
            elif self.oidc_issuer is not None and issuer == self.oidc_issuer:
                claims = self._decode_oidc(token, unverified, self.oidc_audience)
            else:
                raise AuthError("token from an unknown issuer")
        except jwt.PyJWTError as exc:
            raise AuthError(f"invalid token: {type(exc).__name__}") from exc
        self._check_times(claims, now)
        return claims

    def decode_id_token(self, token: str, *, client_id: str, nonce: str) -> dict[str, Any]:
        """Verified claims of an OIDC ID token for the web sign-in (:mod:`api.sso`).

        Signed by the configured issuer (JWKS, asymmetric algorithms only), for
        ``client_id`` (audience), unexpired on the injected clock, carrying ``nonce``.
        """
        now = self._clock()
        try:
            unverified = jwt.decode(token, options={"verify_signature": False})
            if self.oidc_issuer is None or \
                    str(unverified.get("iss", "")).rstrip("/") != self.oidc_issuer:
                raise AuthError("ID token from an unknown issuer")
            claims = self._decode_oidc(token, unverified, client_id)
        except jwt.PyJWTError as exc:
            raise AuthError(f"invalid ID token: {type(exc).__name__}") from exc
        self._check_times(claims, now)
        if not hmac.compare_digest(str(claims.get("nonce", "")), nonce):
            raise AuthError("ID token nonce does not match the sign-in")
        return claims

    def _decode_oidc(self, token: str, unverified: dict[str, Any],
                     audience: str | None) -> dict[str, Any]:
        """Signature (issuer's JWKS), issuer and audience of an OIDC token; times unchecked."""
        key = self._jwks_client().get_signing_key_from_jwt(token).key
        return jwt.decode(token, key, algorithms=OIDC_ALGORITHMS, audience=audience,
                          issuer=unverified.get("iss"),
                          options={**_TIMES_CHECKED_BY_US,
                                   "verify_aud": audience is not None})

    @staticmethod
    def _check_times(claims: dict[str, Any], now: datetime) -> None:
        # Expiry is checked against the injected clock, not the wall clock.
        ts = now.timestamp()
        if float(claims["exp"]) < ts - LEEWAY_S:
            raise AuthError("token expired")
        if float(claims["iat"]) > ts + LEEWAY_S:
            raise AuthError("token issued in the future")

    def resolve(self, claims: dict[str, Any], lookup_id: Callable[[str], User],
                lookup_email: Callable[[str], User]) -> Principal:
        """Map verified claims to a :class:`Principal` via the user table."""
        user = self.resolve_user(claims, lookup_id, lookup_email)
        return Principal(user_id=user.id, practice_id=user.practice_id, role=Role(user.role),
                         email=user.email, token_id=claims.get("jti"))

    @staticmethod
    def resolve_user(claims: dict[str, Any], lookup_id: Callable[[str], User],
                     lookup_email: Callable[[str], User]) -> User:
        """The active, non-hub user that verified ``claims`` name (the authority on role)."""
        if claims["iss"] == LOCAL_ISSUER:
            user = lookup_id(str(claims["sub"]))
        else:
            email = claims.get("email")
            if not email:
                raise AuthError("OIDC token has no email claim")
            if claims.get("email_verified") is False:
                raise AuthError("OIDC token's e-mail is not verified by the issuer")
            user = lookup_email(str(email).strip().lower())
        if not user.active:
            raise AuthError("account disabled")
        if Role(user.role) == Role.HUB:
            raise ForbiddenError("hub credentials are for MQTT only")
        return user


def csrf_token(secret_key: str, session_id: str) -> str:
    """CSRF token bound to a session (HMAC of its id with the secret key)."""
    mac = hmac.new(secret_key.encode(), b"csrf:" + session_id.encode(), hashlib.sha256)
    return mac.hexdigest()


def csrf_ok(secret_key: str, session_id: str, presented: str | None) -> bool:
    """True when ``presented`` is the CSRF token of ``session_id``."""
    if not presented:
        return False
    return hmac.compare_digest(csrf_token(secret_key, session_id), presented)
