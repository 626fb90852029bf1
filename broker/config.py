"""`agora serve --config agora.toml`: every Settings field as a top-level TOML key (record 0244).

Generic over the fields of broker.settings.Settings, so a setting added there is a key here with nothing else to
write. The file is checked whole before anything starts: an unknown key (with the nearest known one), a value of
the wrong type, and a value the settings refuse are errors that name the file and the key.

    # agora.toml
    port = 1026
    store = "redis://127.0.0.1:6379/0"
    workers = 4
    notify_timeout = 5.0
    history = true
"""

from __future__ import annotations

import difflib
import tomllib
from dataclasses import fields
from pathlib import Path

from broker.settings import Settings

_TYPES: dict[str, tuple[type, ...]] = {"bool": (bool,), "int": (int,), "float": (int, float), "str": (str,)}
_NAMES = {"bool": "true or false", "int": "an integer", "float": "a number", "str": "a string"}


class ConfigError(ValueError):
    """A configuration file that cannot be used; the message names the file and, when there is one, the key."""


def read_config(path: str | Path) -> dict[str, object]:
    """The settings a TOML file gives, checked against the Settings fields (ConfigError otherwise)."""
    try:
        with open(path, "rb") as handle:
            document = tomllib.load(handle)
    except OSError as exc:
        raise ConfigError(f"{path}: cannot be read: {exc.strerror or exc}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from exc
    kinds = {f.name: str(f.type) for f in fields(Settings)}
    values: dict[str, object] = {}
    for key, value in document.items():
        kind = kinds.get(key)
        if kind is None:
            near = difflib.get_close_matches(key, kinds, n=1)
            hint = f" (did you mean {near[0]!r}?)" if near else ""
            raise ConfigError(f"{path}: unknown key {key!r}{hint}; the keys are the settings: {', '.join(kinds)}")
        allowed = _TYPES.get(kind, (str,))
        # bool is an int in Python: a `port = true` must not pass as port 1.
        if not isinstance(value, allowed) or (isinstance(value, bool) and bool not in allowed):
            shown = "a table" if isinstance(value, dict) else f"{type(value).__name__} {value!r}"
            raise ConfigError(f"{path}: key {key!r} must be {_NAMES.get(kind, 'a string')}, not {shown}")
        values[key] = float(value) if kind == "float" and isinstance(value, int | float) else value
    return values


def load_settings(config: str | None, **flags: object) -> Settings:
    """defaults < the file < AGORA_* variables < flags; every error names its source."""
    base = read_config(config) if config else {}
    try:
        return Settings.from_env(base, **flags)
    except ValueError as exc:
        sources = f"{config}, the AGORA_* environment and the flags" if config else "the environment and the flags"
        raise ConfigError(f"{exc} (settings from {sources})") from exc
