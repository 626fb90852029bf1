"""`agora serve` secured, end to end (issue 18): a real uvicorn process with an issuers file and the local OpenID
Connect issuer of tests/support/oidc_issuer.py, an API key made with `agora keys`, the modes (an open broker
refuses a non-loopback address unless --insecure) and HTTPS with a certificate made here."""

from __future__ import annotations

import json
import ssl
import subprocess
import sys
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import httpx
import pytest

from tests.support.certs import self_signed
from tests.support.oidc_issuer import Issuer, running_issuer
from tests.support.servers import free_port, running_broker, store_url_for

ENTITY = {"id": "urn:ngsi-ld:Vehicle:e2e-1", "type": "Vehicle", "speed": {"type": "Property", "value": 3}}


@pytest.fixture(scope="module")
def issuer() -> Iterator[Issuer]:
    with running_issuer() as found:
        yield found


def serve(*args: str, timeout: float = 30) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "broker.cli", "serve", "--store", "memory://", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def test_an_open_broker_refuses_a_public_address_in_one_line() -> None:
    done = serve("--host", "0.0.0.0", "--port", str(free_port()))
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "--insecure" in lines[0] and "--issuers" in lines[0], done.stderr


def test_a_bad_issuers_file_stops_the_start_in_one_line(tmp_path: Path) -> None:
    (tmp_path / "issuers.json").write_text(json.dumps({"issuers": [{"issuer": "https://id.example"}]}))
    done = serve("--issuers", str(tmp_path / "issuers.json"), "--port", str(free_port()))
    assert done.returncode == 2 and "audience" in done.stderr and len(done.stderr.strip().splitlines()) == 1


def test_the_metadata_addresses_cannot_be_allowed() -> None:
    done = serve("--outbound-allow", "loopback,169.254.0.0/16", "--port", str(free_port()))
    assert done.returncode == 2 and "never allowed" in done.stderr and len(done.stderr.strip().splitlines()) == 1


def test_insecure_serves_open_but_guards_loopback(tmp_path: Path) -> None:
    """--insecure on 0.0.0.0: open, but not the open *loopback* mode, so loopback endpoints are refused."""
    with running_broker("memory://", tmp_path, extra_args=["--host", "0.0.0.0", "--insecure"]) as broker:
        sub = {"type": "Subscription", "entities": [{"type": "T"}], "notification": {"endpoint": {"uri": broker.url}}}
        refused = httpx.post(broker.url + "/ngsi-ld/v1/subscriptions", json=sub)
        assert refused.status_code == 400 and "outbound policy" in refused.json()["detail"]
        assert "--insecure" in broker.log()


@pytest.mark.parametrize("backend", ["sqlite", "redis"])
def test_tokens_and_keys_through_a_real_server(tmp_path: Path, issuer: Issuer, backend: str) -> None:
    with ExitStack() as stack:
        secured_round_trip(tmp_path, issuer, store_url_for(backend, tmp_path, stack))


def secured_round_trip(tmp_path: Path, issuer: Issuer, db: str) -> None:
    made = subprocess.run(
        [sys.executable, "-m", "broker.cli", "keys", "--store", db, "create", "--name", "importer", "--role", "admin"],
        capture_output=True,
        text=True,
        check=True,
    )
    key = made.stdout.strip()
    (tmp_path / "issuers.json").write_text(json.dumps({"issuers": [issuer.config()]}))
    with running_broker(db, tmp_path, extra_args=["--issuers", str(tmp_path / "issuers.json")]) as broker:
        url = broker.url + "/ngsi-ld/v1/entities"
        refused = httpx.post(url, json=ENTITY)
        assert refused.status_code == 401 and refused.headers["WWW-Authenticate"].startswith("Bearer")
        assert httpx.get(url + "?type=Vehicle").json()["status"] == 401  # a problem body, not data
        created = httpx.post(url, json=ENTITY, headers={"X-API-Key": key})
        assert created.status_code == 201, created.text
        token = {"Authorization": f"Bearer {issuer.token('ES256', roles=['admin'])}"}  # no policy: admin only
        assert httpx.get(url + "/" + ENTITY["id"], headers=token).json()["speed"]["value"] == 3
        expired = {"Authorization": f"Bearer {issuer.token(exp=1)}"}
        assert httpx.get(url + "/" + ENTITY["id"], headers=expired).status_code == 401
        assert httpx.get(broker.url + "/ngsi-ld/v1/openapi.json").status_code == 200


def test_https_with_a_certificate_and_key(tmp_path: Path) -> None:
    cert, key = self_signed(tmp_path)
    trust = ssl.create_default_context(cafile=str(cert))
    args = ["--tls-cert", str(cert), "--tls-key", str(key)]
    with running_broker("memory://", tmp_path, extra_args=args, scheme="https", verify=trust) as broker:
        assert broker.url.startswith("https://")
        with httpx.Client(verify=trust) as client:
            response = client.get(broker.url + "/ngsi-ld/v1/info/sourceIdentity")
            assert response.status_code == 200
            assert "max-age" in response.headers["Strict-Transport-Security"]
            assert "server" not in response.headers
        with pytest.raises(httpx.TransportError):
            httpx.get(broker.url.replace("https://", "http://") + "/ngsi-ld/v1/info/sourceIdentity", timeout=2)


def test_the_conformance_kit_audits_a_secured_broker_with_a_credential(tmp_path: Path) -> None:
    """`agora conformance --header`: an auditor's API key on every request of the kit (the entity cases here);
    without it every case meets 401."""
    db = f"sqlite:///{tmp_path / 'agora.db'}"
    key = subprocess.run(
        [sys.executable, "-m", "broker.cli", "keys", "--store", db, "create", "--name", "auditor", "--role", "admin"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    args = ["--auth", "required", "--outbound-allow", "loopback"]
    with running_broker(db, tmp_path, extra_args=args) as broker:
        kit = [sys.executable, "-m", "broker.cli", "conformance", "--broker", broker.url, "--only", "5.6.1"]
        audited = subprocess.run([*kit, "--header", f"X-API-Key: {key}"], capture_output=True, text=True, timeout=120)
        assert audited.returncode == 0, audited.stdout[-2000:] + audited.stderr[-2000:]
        passed = int(audited.stdout.strip().splitlines()[-1].split()[0])
        assert passed > 0
        refused = subprocess.run(kit, capture_output=True, text=True, timeout=120)
        assert refused.returncode != 0
        bad = subprocess.run([*kit, "--header", "no colon"], capture_output=True, text=True, timeout=60)
        assert bad.returncode == 2 and "NAME: VALUE" in bad.stderr
