"""Web sign-in with an OpenID provider (authorisation code + PKCE), end to end over HTTP.

The provider is ``tests.support.oidc_provider``: a real HTTP server that checks
the client, the redirect URI, the code (once) and the PKCE verifier, and signs
ID tokens with its own RSA key.  Vitalgate discovers it, exchanges the code
with Authlib and verifies the ID token against the provider's JWKS.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.deps import SESSION_COOKIE
from api.sso import CALLBACK_PATH, PENDING_COOKIE
from gateway.settings import Settings
from tests.api.conftest import TEST_SECRET, Env, build_env
from tests.support.oidc_provider import OidcProvider, follow_to_provider

BASE = "http://testserver"


def _sso_env(tmp_path: Path, *, client_secret: str | None) -> Iterator[tuple[Env, OidcProvider]]:
    gen = build_env(f"sqlite:///{tmp_path / 'sso.db'}")
    env = next(gen)
    provider = OidcProvider(clock=env.clock, client_secret=client_secret,
                            redirect_uri=BASE + CALLBACK_PATH)
    try:
        settings = Settings(secret_key=TEST_SECRET, public_url=BASE, oidc_issuer=provider.url,
                            oidc_audience="vitalgate-api", oidc_client_id=provider.client_id,
                            oidc_client_secret=client_secret, _env_file=None)  # type: ignore[call-arg]
        env.app = create_app(settings, env.store, clock=env.clock)
        with TestClient(env.app, base_url=BASE) as client:
            env.client = client
            yield env, provider
    finally:
        provider.close()
        gen.close()


@pytest.fixture
def sso(tmp_path: Path) -> Iterator[tuple[Env, OidcProvider]]:
    """A seeded app whose web pages sign in with a confidential OIDC client."""
    yield from _sso_env(tmp_path, client_secret="s3cret")


@pytest.fixture
def public_sso(tmp_path: Path) -> Iterator[tuple[Env, OidcProvider]]:
    """The same with a public client (no secret: PKCE alone binds the code)."""
    yield from _sso_env(tmp_path, client_secret=None)


def _start(env: Env, next_: str = "/queue") -> str:
    """Click "sign in with your organisation's account": the provider's URL."""
    resp = env.client.get("/login/oidc", params={"next": next_}, follow_redirects=False)
    assert resp.status_code == 303, resp.text
    assert env.client.cookies.get(PENDING_COOKIE)
    return str(resp.headers["location"])


def _back(env: Env, location: str) -> Any:
    """Follow the provider's redirect back to Vitalgate's callback (not further)."""
    assert location.startswith(BASE + CALLBACK_PATH)
    return env.client.get(location.removeprefix(BASE), follow_redirects=False)


def sign_in(env: Env, next_: str = "/queue") -> Any:
    """The whole round trip; the callback's response."""
    return _back(env, follow_to_provider(_start(env, next_)))


def _refused(resp: Any, env: Env) -> None:
    assert resp.status_code == 303
    assert resp.headers["location"] == "/login?error=sso"
    assert env.client.cookies.get(SESSION_COOKIE) is None


def test_sign_in_with_the_provider_opens_a_session(sso: tuple[Env, OidcProvider]) -> None:
    env, provider = sso
    provider.account = env.a.emails["coordinator"].upper()  # e-mail case does not matter
    resp = sign_in(env, next_=f"/patients/{env.a.patient}")
    assert resp.status_code == 303
    assert resp.headers["location"] == f"/patients/{env.a.patient}"
    assert env.client.cookies.get(SESSION_COOKIE)
    assert env.client.cookies.get(PENDING_COOKIE) is None  # the pending sign-in is spent
    page = env.client.get("/queue")
    assert page.status_code == 200
    # the user row decides who is signed in, and as what
    assert f"{env.a.emails['coordinator']} (coordinator)" in page.text
    # what reached the token endpoint: client authentication, the code's redirect URI
    # and the PKCE verifier (the provider checked it against the challenge)
    (req,) = provider.token_requests
    assert req["authorization"].startswith("Basic ")
    assert req["form"]["redirect_uri"] == BASE + CALLBACK_PATH
    assert len(req["form"]["code_verifier"]) >= 43


def test_public_client_signs_in_with_pkce_alone(public_sso: tuple[Env, OidcProvider]) -> None:
    env, provider = public_sso
    provider.account = env.a.emails["physician"]
    resp = sign_in(env)
    assert resp.headers["location"] == "/queue"
    assert env.client.get("/queue").status_code == 200
    (req,) = provider.token_requests
    assert req["authorization"] is None
    assert req["form"]["client_id"] == provider.client_id


def test_login_page_offers_single_sign_on_only_when_configured(
        sso: tuple[Env, OidcProvider], env: Env) -> None:
    with_sso, _ = sso
    assert 'href="/login/oidc?next=/queue"' in with_sso.client.get("/login").text
    page = env.client.get("/login")
    assert page.status_code == 200 and "/login/oidc" not in page.text
    assert env.client.get("/login/oidc", follow_redirects=False).status_code == 404
    assert env.client.get(CALLBACK_PATH, params={"code": "x", "state": "y"},
                          follow_redirects=False).status_code == 404


@pytest.mark.parametrize("elsewhere", ["//evil.example/queue", "/\\evil.example/queue",
                                       "https://evil.example/", "/queue\r\nSet-Cookie: x=1"])
def test_next_page_is_never_another_site(sso: tuple[Env, OidcProvider], elsewhere: str) -> None:
    env, provider = sso
    provider.account = env.a.emails["coordinator"]
    assert sign_in(env, next_=elsewhere).headers["location"] == "/queue"


def test_state_must_match_the_sign_in_in_progress(sso: tuple[Env, OidcProvider]) -> None:
    env, provider = sso
    provider.account = env.a.emails["coordinator"]
    back = follow_to_provider(_start(env))
    forged = back.replace("state=", "state=x", 1)
    _refused(_back(env, forged), env)
    assert provider.token_requests == []  # refused before the code was spent


def test_callback_without_a_sign_in_in_progress_is_refused(
        sso: tuple[Env, OidcProvider]) -> None:
    env, provider = sso
    provider.account = env.a.emails["coordinator"]
    back = follow_to_provider(_start(env))
    env.client.cookies.delete(PENDING_COOKIE, path="/login")
    _refused(_back(env, back), env)


def test_a_code_works_once(sso: tuple[Env, OidcProvider]) -> None:
    env, provider = sso
    provider.account = env.a.emails["coordinator"]
    back = follow_to_provider(_start(env))
    assert _back(env, back).headers["location"] == "/queue"
    env.client.cookies.clear()
    _refused(_back(env, back), env)  # replayed: no pending sign-in, and the code is spent


def test_sign_in_expires_after_ten_minutes(sso: tuple[Env, OidcProvider]) -> None:
    env, provider = sso
    provider.account = env.a.emails["coordinator"]
    back = follow_to_provider(_start(env))
    env.clock.advance(minutes=11)
    _refused(_back(env, back), env)


def test_provider_refusal_is_shown_not_raised(sso: tuple[Env, OidcProvider]) -> None:
    env, provider = sso
    provider.account = env.a.emails["coordinator"]
    provider.deny = "access_denied"
    resp = sign_in(env)
    _refused(resp, env)
    page = env.client.get("/login?error=sso")
    assert "Single sign-on did not sign you in" in page.text


@pytest.mark.parametrize("bad", ["nonce", "audience", "expired", "issuer", "no_email",
                                 "unverified_email"])
def test_bad_id_tokens_are_refused(sso: tuple[Env, OidcProvider], bad: str) -> None:
    env, provider = sso
    provider.account = env.a.emails["coordinator"]
    now = int(env.clock().timestamp())
    provider.id_token_claims = {
        "nonce": {"nonce": "another-sign-in"},
        "audience": {"aud": "vitalgate-api"},  # the API audience is not the web client
        "expired": {"iat": now - 7200, "exp": now - 3600},
        "issuer": {"iss": "https://idp.example"},
        "unverified_email": {"email_verified": False},
    }.get(bad, {})
    if bad == "no_email":
        provider.account = None  # the provider's subject has no e-mail claim
    _refused(sign_in(env), env)


@pytest.mark.parametrize("who", ["unknown", "hub", "disabled"])
def test_only_active_vitalgate_staff_sign_in(sso: tuple[Env, OidcProvider], who: str) -> None:
    env, provider = sso
    if who == "unknown":
        provider.account = "someone@elsewhere.example"
    elif who == "hub":
        provider.account = env.a.emails["hub"]
    else:
        user = env.store.get_user(env.a.users["biller"])
        env.store.update_user(dataclasses.replace(user, active=False))
        provider.account = user.email
    _refused(sign_in(env), env)


def test_unreachable_provider_sends_back_to_the_login_page(
        sso: tuple[Env, OidcProvider]) -> None:
    env, provider = sso
    provider.close()
    resp = env.client.get("/login/oidc", follow_redirects=False)
    assert resp.status_code == 303
    assert resp.headers["location"] == "/login?error=sso"


NEW_USER = {"email": "new.nurse@a.example.org", "role": "coordinator", "full_name": "New Nurse"}


def test_admin_creates_a_single_sign_on_only_user(sso: tuple[Env, OidcProvider]) -> None:
    env, provider = sso
    resp = env.client.post("/api/v1/users", json=NEW_USER, headers=env.headers(env.a, "admin"))
    assert resp.status_code == 201, resp.text
    assert env.store.get_user(resp.json()["id"]).password_hash is None
    # no password: every password login is refused
    for password in ("x", "correct horse battery staple"):
        assert env.client.post("/api/v1/auth/token", data={
            "username": NEW_USER["email"], "password": password}).status_code == 401
    provider.account = NEW_USER["email"]
    assert sign_in(env).headers["location"] == "/queue"
    assert env.client.get("/queue").status_code == 200


def test_a_password_is_required_without_single_sign_on(env: Env) -> None:
    resp = env.client.post("/api/v1/users", json=NEW_USER, headers=env.headers(env.a, "admin"))
    assert resp.status_code == 422
    assert "single sign-on" in resp.text
