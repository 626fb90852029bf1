"""`agora serve --config agora.toml` (record 0244): every Settings field is a key, the file is checked whole with
errors that name the file and the key, and defaults < file < environment < flags."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from broker.cli import main
from broker.config import ConfigError, load_settings, read_config
from broker.settings import Settings

# A value unlike the default for each kind of field; fields with a fixed set of values get another valid one.
CHOICES = {
    "history_on_delete": "delete",
    "log_format": "json",
    "tracing": "console",
    "log_level": "debug",
    "auth": "open",
    "audit": "on",
}


def _other(field: dataclasses.Field[object]) -> object:
    default = field.default
    if field.name in CHOICES:
        return CHOICES[field.name]
    if field.type == "bool":
        return not default
    if field.type == "int":
        return int(default) + 7  # type: ignore[call-overload]
    if field.type == "float":
        return float(default) + 0.5  # type: ignore[arg-type]
    return f"{default}-from-file"


def _toml(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return repr(value)


def _write(path: Path, values: dict[str, object]) -> Path:
    path.write_text("".join(f"{key} = {_toml(value)}\n" for key, value in values.items()))
    return path


def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for field in dataclasses.fields(Settings):
        monkeypatch.delenv(f"AGORA_{field.name.upper()}", raising=False)


def test_every_setting_is_a_key_of_the_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _clean_env(monkeypatch)
    wanted = {f.name: _other(f) for f in dataclasses.fields(Settings)}
    wanted["tls_cert"] = wanted["tls_key"] = ""  # they go together, and name files
    settings = load_settings(str(_write(tmp_path / "agora.toml", wanted)))
    assert dataclasses.asdict(settings) == wanted


def test_defaults_then_file_then_environment_then_flags(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _clean_env(monkeypatch)
    path = str(_write(tmp_path / "agora.toml", {"port": 2000, "workers": 3, "notify_timeout": 4, "source_alias": "f"}))
    monkeypatch.setenv("AGORA_WORKERS", "5")
    monkeypatch.setenv("AGORA_SOURCE_ALIAS", "env")
    settings = load_settings(path, source_alias="flag")
    assert settings.port == 2000  # the file over the default
    assert settings.notify_timeout == 4.0 and isinstance(settings.notify_timeout, float)
    assert settings.workers == 5  # the environment over the file
    assert settings.source_alias == "flag"  # a flag over both
    assert settings.max_page_size == Settings().max_page_size  # untouched: the default


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("prot = 1026\n", "unknown key 'prot' (did you mean 'port'?)"),
        ('port = "1026"\n', "key 'port' must be an integer, not str '1026'"),
        ("port = true\n", "key 'port' must be an integer, not bool True"),
        ("history = 1\n", "key 'history' must be true or false, not int 1"),
        ("store = 5\n", "key 'store' must be a string, not int 5"),
        ("[store]\nurl = 'x'\n", "key 'store' must be a string, not a table"),
        ("port = \n", "not valid TOML"),
        ('history_on_delete = "forget"\n', "history_on_delete must be keep or delete, not 'forget'"),
    ],
)
def test_a_bad_file_is_refused_naming_the_file_and_the_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], text: str, message: str
) -> None:
    _clean_env(monkeypatch)
    path = tmp_path / "agora.toml"
    path.write_text(text)
    with pytest.raises(ConfigError) as caught:
        load_settings(str(path))
    assert message in str(caught.value) and str(path) in str(caught.value)
    assert main(["serve", "--config", str(path)]) == 2  # refused before anything starts
    err = capsys.readouterr().err
    assert message in err and str(path) in err


def test_a_missing_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"nowhere\.toml: cannot be read"):
        read_config(tmp_path / "nowhere.toml")
