"""Authentication (broker.auth, broker.http.authn; records 0201-0203) against a real local OpenID Connect issuer
(tests/support/oidc_issuer.py) and API keys made with `agora keys`: what is accepted, what is refused with 401 and
the RFC 6750 challenge, and that refusals are never 500."""

from __future__ import annotations

import asyncio
import base64
import io
import json
import time
from collections.abc import Iterator
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path

import jwt
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from starlette.requests import Request
from starlette.testclient import TestClient

from broker.auth.identity import ANONYMOUS_ADMIN, Identity
from broker.auth.oidc import IssuerConfig, TokenVerifier, claim, load_issuers
from broker.cli import main
from broker.core.caller import Caller
from broker.core.errors import Unauthenticated
from broker.http.app import create_app
from broker.http.authn import IDENTITY_KEY
from broker.http.caller import SNAPSHOT_TENANT_KEY, caller_of
from broker.settings import Settings
from tests.support.oidc_issuer import AUDIENCE, Issuer, new_key, running_issuer

ENTITIES = "/ngsi-ld/v1/entities?type=T"


@pytest.fixture(scope="module")
def issuer() -> Iterator[Issuer]:
    with running_issuer() as found:
        yield found


@pytest.fixture(scope="module")
def other_issuer() -> Iterator[Issuer]:
    with running_issuer("/realms/operator") as found:
        yield found


def issuers_file(tmp: Path, *issuers: Issuer, **extra: object) -> str:
    path = tmp / "issuers.json"
    path.write_text(json.dumps({"issuers": [i.config(**extra) for i in issuers]}))
    return str(path)


@pytest.fixture(scope="module")
def store_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    return f"sqlite:///{tmp_path_factory.mktemp('authn') / 'agora.db'}"


@pytest.fixture(scope="module")
def secured(
    issuer: Issuer, other_issuer: Issuer, store_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[TestClient]:
    """A broker that accepts tokens of `issuer` only (`other_issuer` runs but is not configured)."""
    path = issuers_file(tmp_path_factory.mktemp("issuers"), issuer, roles_claim="realm_access.roles")
    with TestClient(create_app(Settings(store=store_url, issuers=path)), base_url="http://testserver") as client:
        yield client


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def assert_refused(response: object, error: str | None = "invalid_token", status: int = 401) -> None:
    assert response.status_code == status, response.text  # type: ignore[attr-defined]
    challenge = response.headers["WWW-Authenticate"]  # type: ignore[attr-defined]
    assert challenge.startswith('Bearer realm="agora"')
    assert (f'error="{error}"' in challenge) if error else ("error=" not in challenge)
    body = response.json()  # type: ignore[attr-defined]
    assert body["status"] == status and body["detail"]


def test_no_credential_is_401_with_a_bare_challenge(secured: TestClient) -> None:
    assert_refused(secured.get(ENTITIES), error=None)


@pytest.mark.parametrize("alg", ["RS256", "ES256", "EdDSA"])
def test_a_token_of_each_algorithm_is_accepted(secured: TestClient, issuer: Issuer, alg: str) -> None:
    assert secured.get(ENTITIES, headers=bearer(issuer.token(alg))).status_code == 200


def test_public_resources_need_no_credential(secured: TestClient, issuer: Issuer) -> None:
    assert secured.get("/ngsi-ld/v1/openapi.json").status_code == 200
    created = secured.post(
        "/ngsi-ld/v1/jsonldContexts",
        json={"@context": {"a": "http://a/"}},
        headers=bearer(issuer.token(realm_access={"roles": ["admin"]})),  # managing @contexts is the admin's
    )
    assert created.status_code == 201, created.text
    assert secured.get(created.headers["Location"]).status_code == 200
    assert_refused(secured.get("/ngsi-ld/v1/jsonldContexts"), error=None)


def now() -> int:
    return int(time.time())


def none_token(issuer: Issuer) -> str:
    def part(doc: object) -> str:
        return base64.urlsafe_b64encode(json.dumps(doc).encode()).rstrip(b"=").decode()

    claims = {"iss": issuer.url, "aud": AUDIENCE, "sub": "mallory", "exp": now() + 300}
    return f"{part({'alg': 'none', 'typ': 'JWT'})}.{part(claims)}."


def refused_tokens(issuer: Issuer, other: Issuer) -> dict[str, str]:
    impostor = new_key("RS256")
    impostor.kid = issuer.key("RS256").kid  # the right key id, the wrong key
    public_pem = issuer.key("RS256").public_jwk()["n"]
    return {
        "expired": issuer.token(exp=now() - 120),
        "not yet valid": issuer.token(nbf=now() + 600),
        "issued in the future": issuer.token(iat=now() + 600),
        "wrongly signed": issuer.token(key=impostor),
        "alg none": none_token(issuer),
        "HS256 with the public key": jwt.encode(
            {"iss": issuer.url, "aud": AUDIENCE, "sub": "m", "exp": now() + 60}, public_pem, algorithm="HS256"
        ),
        "other issuer": other.token(),
        "other issuer's token claiming ours": other.token(iss=issuer.url),
        "wrong audience": issuer.token(aud="another-service"),
        "no exp": issuer.token(exp=None),
        "no sub": issuer.token(sub=None),
        "unknown kid": jwt.encode(
            {"iss": issuer.url, "aud": AUDIENCE, "sub": "m", "exp": now() + 60},
            impostor.private,
            algorithm="RS256",
            headers={"kid": "never-published"},
        ),
        "malformed": "not.a.jwt",
        "garbage": "x" * 40,
    }


def test_every_bad_token_is_401_invalid_token(secured: TestClient, issuer: Issuer, other_issuer: Issuer) -> None:
    for why, token in refused_tokens(issuer, other_issuer).items():
        response = secured.get(ENTITIES, headers=bearer(token))
        assert response.status_code == 401, (why, response.text)
        assert_refused(response)


@pytest.mark.parametrize(
    "header", ["Basic YWxpY2U6c2VjcmV0", "Bearer", "Bearer a b", "Token abc", "bearer"], ids=lambda h: h[:12]
)
def test_a_malformed_authorization_header_is_400_invalid_request(secured: TestClient, header: str) -> None:
    assert_refused(secured.get(ENTITIES, headers={"Authorization": header}), "invalid_request", 400)


def test_two_credentials_are_400_invalid_request(secured: TestClient, issuer: Issuer) -> None:
    headers = {**bearer(issuer.token()), "X-API-Key": "agora_000000000000_" + "a" * 43}
    assert_refused(secured.get(ENTITIES, headers=headers), "invalid_request", 400)


def test_several_issuers_each_with_its_own_claims(issuer: Issuer, other_issuer: Issuer, tmp_path: Path) -> None:
    """The city's and an operator's identity providers at once; a token is judged by its own issuer's settings."""
    path = tmp_path / "issuers.json"
    entries = [issuer.config(roles_claim="realm_access.roles"), other_issuer.config(audience=["api://agora"])]
    path.write_text(json.dumps({"issuers": entries}))
    city = issuer.token("RS256", realm_access={"roles": ["operator"]})
    operator = other_issuer.token("EdDSA", aud="api://agora", roles=["reader"])
    with TestClient(create_app(Settings(store="memory://", issuers=str(path)))) as client:
        assert client.get(ENTITIES, headers=bearer(city)).status_code == 200
        assert client.get(ENTITIES, headers=bearer(operator)).status_code == 200
        # Each audience belongs to its issuer: the city's audience in an operator token does not count.
        assert_refused(client.get(ENTITIES, headers=bearer(other_issuer.token(aud=AUDIENCE))))
    configs = load_issuers(str(path))

    async def identities() -> list[object]:
        verifier = TokenVerifier(configs)
        try:
            return [await verifier.verify(city), await verifier.verify(operator)]
        finally:
            await verifier.aclose()

    found = asyncio.run(identities())
    assert [(i.issuer, i.roles) for i in found] == [  # type: ignore[attr-defined]
        (issuer.url, ("operator",)),
        (other_issuer.url, ("reader",)),
    ]


def test_claims_become_the_caller(issuer: Issuer) -> None:
    config = IssuerConfig(issuer.url, (AUDIENCE,), roles_claim="realm_access.roles", groups_claim="groups")
    token = issuer.token("ES256", realm_access={"roles": ["operator", "reader"]}, groups=["/water"], azp="scada")

    async def verify() -> object:
        verifier = TokenVerifier([config])
        try:
            return await verifier.verify(token)
        finally:
            await verifier.aclose()

    identity = asyncio.run(verify())
    assert identity.subject == "alice"  # type: ignore[attr-defined]
    assert identity.roles == ("operator", "reader")  # type: ignore[attr-defined]
    assert identity.groups == ("/water",)  # type: ignore[attr-defined]
    assert identity.client == "scada" and identity.issuer == issuer.url  # type: ignore[attr-defined]
    assert claim({"scope": "read write"}, "scope") == ("read", "write")
    assert claim({"a": {"b": 3}}, "a.b") == ()


def test_a_rotated_key_is_fetched_once_and_unknown_kids_are_not_refetched(issuer: Issuer) -> None:
    config = IssuerConfig(issuer.url, (AUDIENCE,), refetch_interval=3600.0)

    async def scenario() -> tuple[int, list[int]]:
        verifier = TokenVerifier([config])
        keys = verifier.issuers[issuer.url]
        try:
            await verifier.verify(issuer.token("EdDSA"))
            before = keys.fetches
            rotated = issuer.rotate("EdDSA")
            statuses = []
            # One refetch for the new kid is allowed only after the interval: set the last attempt back.
            keys._set.tried_at -= 3600.0
            await verifier.verify(issuer.token(key=rotated))
            for _ in range(20):  # a flood of unknown key ids: no more fetches within the interval
                try:
                    await verifier.verify(issuer.token(key=new_key("EdDSA")))
                    statuses.append(200)
                except Exception as exc:
                    statuses.append(getattr(exc, "http_status", 500))
            return keys.fetches - before, statuses
        finally:
            await verifier.aclose()

    fetched, statuses = asyncio.run(scenario())
    assert fetched == 1
    assert statuses == [401] * 20


def test_issuers_files_are_checked(tmp_path: Path, issuer: Issuer) -> None:
    bad = [
        {"issuers": []},
        {"issuers": [{"issuer": issuer.url}]},  # no audience
        {"issuers": [{**issuer.config(), "algorithms": ["HS256"]}]},
        {"issuers": [{**issuer.config(), "algorithms": ["none"]}]},
        {"issuers": [{**issuer.config(), "colour": "blue"}]},
        {"issuers": [issuer.config(), issuer.config()]},
        {"issuers": [{"issuer": "http://id.city.example/realms/city", "audience": "agora"}]},  # keys in clear
        {"issuers": [{**issuer.config(), "jwks_uri": "http://10.0.0.5/jwks"}]},
    ]
    for doc in bad:
        (tmp_path / "i.json").write_text(json.dumps(doc))
        with pytest.raises(ValueError):
            load_issuers(str(tmp_path / "i.json"))
    (tmp_path / "i.json").write_text(json.dumps([issuer.config(audience=["a", "b"])]))
    assert load_issuers(str(tmp_path / "i.json"))[0].audience == ("a", "b")


def keys_command(*args: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        code = main(["keys", *args])
    return code, out.getvalue(), err.getvalue()


def test_api_keys_made_listed_and_revoked_with_agora_keys(store_url: str, tmp_path: Path, issuer: Issuer) -> None:
    code, key, _ = keys_command("--store", store_url, "create", "--name", "gtfs importer", "--role", "writer")
    assert code == 0 and key.startswith("agora_")
    key = key.strip()
    code, scoped, _ = keys_command("--store", store_url, "create", "--name", "gw", "--tenant", "city")
    scoped = scoped.strip()
    code, listed, _ = keys_command("--store", store_url, "list")
    assert "gtfs importer" in listed and "roles=writer" in listed and "tenants=city" in listed
    assert key.split("_")[2] not in listed  # the secret is never shown again
    settings_ = Settings(store=store_url, auth="required")
    with TestClient(create_app(settings_)) as client:
        assert client.get(ENTITIES, headers={"X-API-Key": key}).status_code == 200
        assert client.get(ENTITIES, headers=bearer(key)).status_code == 200
        assert client.get(ENTITIES, headers={"X-API-Key": scoped, "NGSILD-Tenant": "city"}).status_code in (200, 404)
        forbidden = client.get(ENTITIES, headers={"X-API-Key": scoped})
        assert forbidden.status_code == 403 and "tenant" in forbidden.json()["detail"]
        assert_refused(client.get(ENTITIES, headers={"X-API-Key": key[:-2] + "zz"}))
        assert_refused(client.get(ENTITIES, headers={"X-API-Key": "agora_nothex"}))
        # No issuer is configured: a JWT is refused, not a 500.
        assert_refused(client.get(ENTITIES, headers=bearer(issuer.token())))
    key_id = key.split("_")[1]
    assert keys_command("--store", store_url, "revoke", key_id)[0] == 0
    assert keys_command("--store", store_url, "revoke", key_id)[0] == 1
    assert f"{key_id}  gtfs importer" in keys_command("--store", store_url, "list")[1]
    with TestClient(create_app(settings_)) as client:
        refused = client.get(ENTITIES, headers={"X-API-Key": key})
        assert_refused(refused)
        assert "revoked" in refused.json()["detail"]


def test_the_open_mode_ignores_credentials(client: TestClient) -> None:
    assert client.get(ENTITIES, headers=bearer("anything")).status_code == 200
    assert ANONYMOUS_ADMIN.roles == ("admin",)


def test_keys_need_a_store_that_keeps_them() -> None:
    code, _, err = keys_command("--store", "memory://", "list")
    assert code == 2 and "keeps nothing" in err
    assert keys_command("--store", "memory://")[0] == 2  # no action


def test_keys_help_lists_the_actions() -> None:
    out = io.StringIO()
    with redirect_stdout(out), pytest.raises(SystemExit):
        main(["keys", "--help"])
    assert all(action in out.getvalue() for action in ("create", "list", "revoke"))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_fuzzed_tokens_are_refused_never_500(secured: TestClient, issuer: Issuer, data: st.DataObject) -> None:
    """Malformed, truncated, re-signed, tampered and random tokens: 401 (or 400 for a malformed header)."""
    valid = issuer.token(data.draw(st.sampled_from(["RS256", "ES256", "EdDSA"])))
    head, body, sig = valid.split(".")
    tampered_claims = data.draw(
        st.dictionaries(
            st.sampled_from(["iss", "aud", "sub", "exp", "nbf", "iat", "alg"]),
            st.one_of(st.none(), st.integers(), st.text(max_size=20), st.lists(st.text(max_size=5), max_size=3)),
        )
    )
    forged_body = base64.urlsafe_b64encode(json.dumps(tampered_claims).encode()).rstrip(b"=").decode()
    token = data.draw(
        st.one_of(
            st.just(f"{head}.{forged_body}.{sig}"),
            st.just(valid[: data.draw(st.integers(0, len(valid) - 1))]),
            st.just(f"{head}.{body}.{sig[::-1]}"),
            st.text(alphabet=st.characters(min_codepoint=33, max_codepoint=126), min_size=1, max_size=300),
            st.builds(lambda a, b, c: f"{a}.{b}.{c}", st.text(max_size=30), st.text(max_size=30), st.text(max_size=30)),
        )
    )
    if " " in token or not token.strip() or any(ord(c) > 126 or ord(c) < 33 for c in token):
        token = token.encode("ascii", "replace").decode().replace(" ", "_").strip() or "_"
    response = secured.get(ENTITIES, headers=bearer(token))
    assert response.status_code in (400, 401), (token, response.status_code, response.text)
    assert "WWW-Authenticate" in response.headers


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    name=st.sampled_from(["Authorization", "X-API-Key"]),
    value=st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126), max_size=200),
)
def test_fuzzed_credential_headers_are_refused_never_500(secured: TestClient, name: str, value: str) -> None:
    """Any printable value of either credential header: 400 or 401 with the challenge, never a 500."""
    response = secured.get(ENTITIES, headers={name: value})
    assert response.status_code in (400, 401), (name, value, response.text)
    assert response.headers["WWW-Authenticate"].startswith('Bearer realm="agora"')


def test_caller_of_builds_the_caller_from_the_identity_and_the_tenant() -> None:
    who = Identity("alice", ("operator",), "portal", ("/water",), "https://id.example", None, "token")
    scope = {"type": "http", "headers": [(b"ngsild-tenant", b"city")], IDENTITY_KEY: who}
    assert caller_of(Request(scope)) == Caller(
        "city", "alice", ("operator",), "portal", ("/water",), "https://id.example"
    )
    assert caller_of(Request({**scope, SNAPSHOT_TENANT_KEY: "snap"})).tenant == "snap"
    with pytest.raises(Unauthenticated):
        caller_of(Request({"type": "http", "headers": []}))  # no identity: refused, never the administrator
