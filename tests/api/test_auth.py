"""Authentication: password tokens, rate limit, expiry, hub refusal, OIDC via JWKS, defaults.

The web sign-in with an OIDC provider is in ``test_web_sso.py``.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from api.app import create_app
from gateway.settings import DEV_SECRET, Settings
from gateway.store import open_store
from tests.api.conftest import PASSWORD, Env, build_env
from tests.support.oidc_provider import OidcProvider

TOKEN_URL = "/api/v1/auth/token"


def login(env: Env, email: str, password: str = PASSWORD):
    return env.client.post(TOKEN_URL, data={"username": email, "password": password})


def test_password_login_issues_a_working_token(env: Env) -> None:
    resp = login(env, env.a.emails["coordinator"])
    assert resp.status_code == 200
    body = resp.json()
    assert body["token_type"] == "bearer" and body["expires_in"] > 0
    me = env.client.get("/api/v1/users/me",
                        headers={"Authorization": f"Bearer {body['access_token']}"})
    assert me.status_code == 200
    assert me.json()["id"] == env.a.users["coordinator"]
    assert "password_hash" not in me.text


def test_email_is_case_insensitive(env: Env) -> None:
    assert login(env, env.a.emails["admin"].upper()).status_code == 200


@pytest.mark.parametrize("email", ["admin@a.example.org", "nobody@a.example.org"])
def test_bad_password_or_unknown_user_is_401(env: Env, email: str) -> None:
    resp = login(env, email, "wrong password!!")
    assert resp.status_code == 401
    assert resp.json()["detail"] == "wrong e-mail or password"


def test_rate_limit_after_five_failures(env: Env) -> None:
    email = env.a.emails["coordinator"]
    for _ in range(5):
        assert login(env, email, "wrong password!!").status_code == 401
    locked = login(env, email)  # even the right password is refused now
    assert locked.status_code == 429
    assert "Retry-After" in locked.headers
    # another user from the same address is not affected
    assert login(env, env.a.emails["physician"]).status_code == 200
    env.clock.advance(minutes=6)
    assert login(env, email).status_code == 200


def test_success_resets_the_failure_count(env: Env) -> None:
    email = env.a.emails["biller"]
    for _ in range(4):
        login(env, email, "wrong password!!")
    assert login(env, email).status_code == 200
    for _ in range(4):
        assert login(env, email, "wrong password!!").status_code == 401
    assert login(env, email).status_code == 200


def test_expired_token_is_401(env: Env) -> None:
    headers = env.headers(env.a, "coordinator")
    assert env.client.get("/api/v1/users/me", headers=headers).status_code == 200
    env.clock.advance(hours=8, minutes=5)
    resp = env.client.get("/api/v1/users/me", headers=headers)
    assert resp.status_code == 401
    assert "expired" in resp.json()["detail"]


@pytest.mark.parametrize("mangle", ["tamper", "none_alg", "other_key", "garbage"])
def test_forged_tokens_are_401(env: Env, mangle: str) -> None:
    good = env.token(env.a, "admin")
    claims = jwt.decode(good, options={"verify_signature": False})
    if mangle == "tamper":
        claims["sub"] = env.b.users["admin"]
        head, _, sig = good.split(".")
        body = jwt.utils.base64url_encode(json.dumps(claims).encode()).decode()
        token = f"{head}.{body}.{sig}"
    elif mangle == "none_alg":
        token = jwt.encode(claims, None, algorithm="none")  # type: ignore[arg-type]
    elif mangle == "other_key":
        token = jwt.encode(claims, "x" * 48, algorithm="HS256")
    else:
        token = "not.a.token"
    resp = env.client.get("/api/v1/users/me", headers={"Authorization": f"Bearer {token}"})
    assert resp.status_code == 401


def test_disabled_user_token_stops_working(env: Env) -> None:
    headers = env.headers(env.a, "coordinator")
    admin = env.headers(env.a, "admin")
    resp = env.client.patch(f"/api/v1/users/{env.a.users['coordinator']}",
                            json={"active": False}, headers=admin)
    assert resp.status_code == 200
    assert env.client.get("/api/v1/users/me", headers=headers).status_code == 401
    assert login(env, env.a.emails["coordinator"]).status_code == 401


def test_hub_role_cannot_log_in_or_use_tokens(env: Env) -> None:
    assert login(env, env.a.emails["hub"]).status_code == 403
    resp = env.client.get("/api/v1/users/me", headers=env.headers(env.a, "hub"))
    assert resp.status_code == 403


def test_role_change_takes_effect_without_new_token(env: Env) -> None:
    headers = env.headers(env.a, "coordinator")
    assert env.client.get("/api/v1/users", headers=headers).status_code == 403
    env.client.patch(f"/api/v1/users/{env.a.users['coordinator']}", json={"role": "admin"},
                     headers=env.headers(env.a, "admin"))
    assert env.client.get("/api/v1/users", headers=headers).status_code == 200


def test_admin_cannot_lock_themselves_out(env: Env) -> None:
    resp = env.client.patch(f"/api/v1/users/{env.a.users['admin']}", json={"active": False},
                            headers=env.headers(env.a, "admin"))
    assert resp.status_code == 409


# -- OIDC --------------------------------------------------------------------------
@pytest.fixture
def oidc(tmp_path: Path) -> Iterator[tuple[Env, OidcProvider]]:
    issuer = OidcProvider()
    try:
        url = f"sqlite:///{tmp_path / 'oidc.db'}"
        gen = build_env(url)
        env = next(gen)
        settings = Settings(secret_key="s" * 40, oidc_issuer=issuer.url,
                            oidc_audience="vitalgate")
        env.app = create_app(settings, env.store, clock=env.clock)
        from fastapi.testclient import TestClient

        env.client = TestClient(env.app)
        yield env, issuer
        gen.close()
    finally:
        issuer.close()


def _claims(env: Env, issuer: OidcProvider, **over: object) -> dict[str, object]:
    now = int(env.clock().timestamp())
    claims: dict[str, object] = {"iss": issuer.url, "aud": "vitalgate", "sub": "idp-123",
                                 "email": env.a.emails["physician"], "iat": now,
                                 "exp": now + 600}
    claims.update(over)
    return claims


def test_oidc_token_validated_against_jwks(oidc: tuple[Env, OidcProvider]) -> None:
    env, issuer = oidc
    token = issuer.token(_claims(env, issuer))
    resp = env.client.get("/api/v1/users/me", headers={"Authorization": f"Bearer {token}"})
    assert resp.status_code == 200, resp.text
    assert resp.json()["id"] == env.a.users["physician"]
    # tenant scoping applies to OIDC users too
    other = env.client.get(f"/api/v1/patients/{env.b.patient}",
                           headers={"Authorization": f"Bearer {token}"})
    assert other.status_code == 404


@pytest.mark.parametrize("bad", ["audience", "expired", "other_key", "unknown_email",
                                 "hs256_with_public_key", "other_issuer"])
def test_oidc_bad_tokens_are_401(oidc: tuple[Env, OidcProvider], bad: str) -> None:
    env, issuer = oidc
    if bad == "audience":
        token = issuer.token(_claims(env, issuer, aud="someone-else"))
    elif bad == "expired":
        past = int((env.clock() - timedelta(hours=2)).timestamp())
        token = issuer.token(_claims(env, issuer, iat=past, exp=past + 60))
    elif bad == "other_key":
        stranger = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        token = issuer.token(_claims(env, issuer), key=stranger)
    elif bad == "unknown_email":
        token = issuer.token(_claims(env, issuer, email="ghost@a.example.org"))
    elif bad == "hs256_with_public_key":
        pem = issuer.key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        import hashlib
        import hmac

        header = jwt.utils.base64url_encode(json.dumps(
            {"alg": "HS256", "typ": "JWT", "kid": "k1"}).encode())
        body = jwt.utils.base64url_encode(json.dumps(_claims(env, issuer)).encode())
        sig = jwt.utils.base64url_encode(hmac.new(pem, header + b"." + body,
                                                  hashlib.sha256).digest())
        token = b".".join([header, body, sig]).decode()
    else:
        token = issuer.token(_claims(env, issuer, iss="http://127.0.0.1:1/evil"))
    resp = env.client.get("/api/v1/users/me", headers={"Authorization": f"Bearer {token}"})
    assert resp.status_code == 401, (bad, resp.text)


def test_local_tokens_still_work_with_oidc_configured(oidc: tuple[Env, OidcProvider]) -> None:
    env, _ = oidc
    resp = env.client.post(TOKEN_URL, data={"username": env.a.emails["admin"],
                                            "password": PASSWORD})
    assert resp.status_code == 200


# -- secure defaults ------------------------------------------------------------------
def test_production_settings_refuse_default_secret() -> None:
    with pytest.raises(ValueError, match="development default"):
        Settings(mode="production")


def test_create_app_refuses_default_secret_outside_dev(tmp_path: Path) -> None:
    store = open_store(f"sqlite:///{tmp_path / 'x.db'}")
    try:
        store.migrate()
        bad = Settings.model_construct(mode="production", secret_key=DEV_SECRET,
                                       oidc_issuer=None, oidc_audience=None,
                                       public_url="https://x")
        with pytest.raises(ValueError, match="refusing to start"):
            create_app(bad, store)
        short = Settings.model_construct(mode="production", secret_key="short",
                                         oidc_issuer=None, oidc_audience=None,
                                         public_url="https://x")
        with pytest.raises(ValueError, match="refusing to start"):
            create_app(short, store)
        ok = Settings(mode="production", secret_key="p" * 40)
        create_app(ok, store)
    finally:
        store.close()


def test_security_headers(env: Env) -> None:
    resp = env.client.get("/healthz")
    assert resp.headers["x-frame-options"] == "DENY"
    assert "default-src 'self'" in resp.headers["content-security-policy"]
    assert resp.headers["cache-control"] == "no-store"


def test_unreachable_oidc_issuer_is_401_not_500(tmp_path: Path) -> None:
    from fastapi.testclient import TestClient

    from tests.support.services import free_port

    gen = build_env(f"sqlite:///{tmp_path / 'down.db'}")
    env = next(gen)
    try:
        issuer = f"http://127.0.0.1:{free_port()}"
        app = create_app(Settings(secret_key="s" * 40, oidc_issuer=issuer), env.store,
                         clock=env.clock)
        now = int(env.clock().timestamp())
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        token = jwt.encode({"iss": issuer, "email": env.a.emails["admin"], "iat": now,
                            "exp": now + 60}, key, algorithm="RS256")
        resp = TestClient(app).get("/api/v1/users/me",
                                   headers={"Authorization": f"Bearer {token}"})
        assert resp.status_code == 401
    finally:
        gen.close()


def test_change_own_password(env: Env) -> None:
    headers = env.headers(env.a, "coordinator")
    url = "/api/v1/users/me/password"
    wrong = env.client.post(url, json={"current_password": "nope nope nope",
                                       "new_password": "a brand new password"}, headers=headers)
    assert wrong.status_code == 401
    ok = env.client.post(url, json={"current_password": PASSWORD,
                                    "new_password": "a brand new password"}, headers=headers)
    assert ok.status_code == 204
    assert login(env, env.a.emails["coordinator"]).status_code == 401
    assert login(env, env.a.emails["coordinator"], "a brand new password").status_code == 200
