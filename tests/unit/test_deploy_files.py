"""The deployment files of deploy/ are linted (yamllint, hadolint: both from PyPI, in the test extras, offline) and
hold together: the settings files are valid for `agora serve --config`, the probes name /health and /ready, the
image is multi-stage and runs as a non-root user. Nothing here builds an image or pulls one."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

from broker.config import read_config
from broker.settings import Settings

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"


def _tool(name: str) -> str:
    """A console script of the test extras: beside this interpreter (the venv), else on PATH."""
    found = Path(sys.executable).parent / name
    path = str(found) if found.exists() else shutil.which(name)
    assert path, f"{name} is not installed: `make .venv/.installed-test` installs the test extras"
    return path


def _run(*cmd: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, capture_output=True, text=True, timeout=60, check=False)


def test_yaml_files_pass_yamllint() -> None:
    result = _run(_tool("yamllint"), "--strict", "-c", str(DEPLOY / ".yamllint.yaml"), str(DEPLOY))
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_dockerfile_passes_hadolint_and_runs_as_a_non_root_user() -> None:
    dockerfile = DEPLOY / "Dockerfile"
    result = _run(_tool("hadolint"), "--no-color", str(dockerfile))
    assert result.returncode == 0, result.stdout + result.stderr
    lines = [line.split() for line in dockerfile.read_text().splitlines() if line and not line.startswith("#")]
    stages = [words for words in lines if words[0] == "FROM"]
    assert len(stages) >= 2 and all("slim" in words[1] for words in stages), stages
    users = [words[1] for words in lines if words[0] == "USER"]
    assert users and users[-1].split(":")[0] not in ("root", "0"), users


def test_the_settings_files_are_valid_for_agora_serve_config(tmp_path: Path) -> None:
    values = read_config(DEPLOY / "agora.toml")
    assert Settings(**values).auth_required  # type: ignore[arg-type]
    configmap = next(doc for doc in _documents(DEPLOY / "kubernetes" / "agora.yaml") if doc["kind"] == "ConfigMap")
    inline = tmp_path / "agora.toml"
    inline.write_text(configmap["data"]["agora.toml"])
    assert read_config(inline)["store"] == "redis://redis:6379/0"


def _documents(path: Path) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc]


def test_kubernetes_probes_use_health_and_ready() -> None:
    deployment = next(doc for doc in _documents(DEPLOY / "kubernetes" / "agora.yaml") if doc["kind"] == "Deployment")
    pod = deployment["spec"]["template"]["spec"]
    container = pod["containers"][0]
    assert container["livenessProbe"]["httpGet"]["path"] == "/health"
    assert container["readinessProbe"]["httpGet"]["path"] == "/ready"
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert container["args"][:1] == ["serve"]


def test_compose_runs_agora_redis_and_mosquitto() -> None:
    compose = yaml.safe_load((DEPLOY / "docker-compose.yml").read_text())
    assert set(compose["services"]) == {"agora", "redis", "mosquitto"}
    agora = compose["services"]["agora"]
    assert agora["environment"]["AGORA_STORE"].startswith("redis://redis:")
    assert any("/ready" in part for part in agora["healthcheck"]["test"])
    assert (DEPLOY / compose["services"]["mosquitto"]["volumes"][0].split(":")[0]).exists()


def test_the_systemd_unit_starts_agora_serve_as_its_own_user() -> None:
    unit = (DEPLOY / "systemd" / "agora.service").read_text().splitlines()
    keys = dict(line.split("=", 1) for line in unit if "=" in line and not line.startswith("#"))
    assert keys["ExecStart"].split()[1:] == ["serve"] and keys["ExecStart"].endswith("agora serve")
    assert keys["User"] == "agora" and "AGORA_CONFIG=" in keys["Environment"]
