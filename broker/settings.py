"""Broker settings: defaults, then AGORA_* environment variables, then command-line flags."""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Mapping
from dataclasses import dataclass, field, fields


@dataclass(frozen=True)
class Settings:
    host: str = "127.0.0.1"
    port: int = 1026
    store: str = "sqlite:///agora.db"
    workers: int = 1
    #: Largest request body accepted, in bytes (413 above it).
    max_body_bytes: int = 8 * 1024 * 1024
    #: Largest page a query may ask for with `limit` (TooManyResults above it).
    max_page_size: int = 1000
    #: Seconds to wait for a remote @context before LdContextNotAvailable (504).
    context_timeout: float = 5.0
    #: Seconds after which a Cached @context is downloaded again (clause 5.13.1; 0 keeps copies forever).
    context_max_age: float = 86_400.0
    #: Name this broker gives itself in /info/sourceIdentity (clause 6.33).
    source_alias: str = "agora"
    #: This broker's Context Source ID (/info/sourceIdentity, and its hop in the Via of forwarded requests); empty:
    #: one of this store's own, `installation_source_id` (record 0199), so two brokers never share it by default.
    source_id: str = field(default="")
    log_level: str = "info"
    #: `text` (one line per record, for a terminal) or `json` (one JSON object per line, with an access log line
    #: per request carrying its request id; for a log collector, record 0242).
    log_format: str = "text"
    #: OpenTelemetry spans of requests, store calls and notification deliveries: `console`, `otlp`, or empty: off
    #: (broker.observe.tracing, record 0246).
    tracing: str = ""
    #: Seconds a notification POST may take when the endpoint sets no timeout.
    notify_timeout: float = 10.0
    #: Attempts per notification before it is recorded as failed.
    notify_attempts: int = 3
    #: Seconds before the second attempt, doubled for each further one.
    notify_backoff: float = 0.5
    #: Seconds after a failed notification during which an endpoint is not tried (endpoint.cooldown overrides it).
    notify_cooldown: float = 10.0
    #: Notifications on the wire at once, over every endpoint.
    notify_concurrency: int = 64
    #: Seconds between looks at an idle change feed.
    notify_poll_interval: float = 0.05
    #: Whether every write records temporal history (the temporal API, clause 5.7.3); false turns it off.
    history: bool = True
    #: What deleting an entity does to its history: keep (deletedAt instances recorded) or delete.
    history_on_delete: str = "keep"
    #: Retention: instances older than this many seconds are removed (0 keeps them forever).
    history_max_age: float = 0.0
    #: Retention: at most this many instances per attribute are kept, the newest (0 = no bound).
    history_max_count: int = 0
    #: Seconds between two retention passes (only when a retention bound is set).
    history_retention_interval: float = 60.0
    #: Most instances of one attribute in one temporal response; beyond it the answer is 206 Partial Content.
    temporal_instance_limit: int = 10_000
    # -- GDPR (issue 19; README "Personal data") ----------------------------------------------------------------
    #: Retention per entity type and attribute: NAME=ISO-8601-duration pairs, comma-separated (broker.gdpr.retention).
    gdpr_retention: str = ""
    #: The controller's name and contact, at the head of the records of processing (art. 30(1)(a)).
    gdpr_controller: str = ""
    #: A file holding the controller's pseudonym key (128 hex digits, `agora gdpr key`): analytics copies.
    gdpr_pseudonym_key: str = ""
    # -- open data (issue 19; README "Open data") ----------------------------------------------------------------
    #: Who publishes the /catalog (its dct:publisher, and each dataset's unless the dataset names another).
    opendata_publisher: str = "Agora"
    #: Seconds between two regenerations of the published datasets (their survey and distribution files).
    opendata_interval: float = 3600.0
    #: A directory the regeneration writes each dataset's distribution files to; empty: downloads stream live.
    opendata_dir: str = ""
    #: The broker's public URL in the catalogue and the distributions (empty: the URL a request came to).
    opendata_base_url: str = ""
    # -- operations records the console shows (issue 21; README "Console", records 0404-0405) ---------------------
    #: A directory of `agora import --metrics-file DIR/NAME.prom` files: GET /ngsi-ld/v1/agora/imports lists their runs.
    import_metrics_dir: str = ""
    #: A directory of the conformance kit's JSON reports (`agora conformance --report DIR/NAME.json`): the newest is
    #: GET /ngsi-ld/v1/agora/conformance/latest.
    conformance_reports_dir: str = ""
    # -- security (issue 18; README "Securing Agora") ------------------------------------------------------------
    #: `open` (no authentication: every request is the anonymous administrator) or `required` (a bearer token or
    #: an API key on every request); empty: required when issuers are configured, else open.
    auth: str = ""
    #: A JSON file of the OpenID Connect issuers whose tokens are accepted (broker.auth.oidc, record 0201).
    issuers: str = ""
    #: Loopback and private networks the broker may connect to besides public addresses: `loopback`, `private`,
    #: CIDR networks (broker.guards); the open loopback mode allows both.
    outbound_allow: str = ""
    #: Requests per second each client may make on average (token bucket, 429 with Retry-After above it): 0 turns
    #: the limit off; -1 (the default) is off in the open loopback mode and 100 otherwise.
    rate_limit: float = -1.0
    #: Requests a client may make at once above its rate (the bucket's size); 0: twice the rate, at least 10.
    rate_burst: int = 0
    #: Query complexity bounds (TooComplexQuery, 403, above them): nesting depth of q and the other query
    #: languages, their conditions (terms) per query string, and joinLevel.
    max_q_depth: int = 20
    max_q_conditions: int = 100
    max_join_level: int = 10
    #: Access policy rules loaded into the store at start-up (YAML, JSON or TOML; broker.core.policies).
    policies: str = ""
    #: The audit log: `on`, `off`, or empty: on whenever authentication is (record 0224).
    audit: str = ""
    #: Seconds the audit log keeps a record (0: for ever); 90 days by default.
    audit_max_age: float = 7_776_000.0
    #: Serve a non-loopback address without any identity configuration (the open mode), on purpose.
    insecure: bool = False
    #: A PEM certificate (chain) and its key: `agora serve` then speaks HTTPS.
    tls_cert: str = ""
    tls_key: str = ""

    def __post_init__(self) -> None:
        if self.history_on_delete not in ("keep", "delete"):
            raise ValueError(f"history_on_delete must be keep or delete, not {self.history_on_delete!r}")
        if self.tracing not in ("", "console", "otlp"):
            raise ValueError(f"tracing must be console or otlp (or empty: off), not {self.tracing!r}")
        if self.log_format not in ("text", "json"):
            raise ValueError(f"log_format must be text or json, not {self.log_format!r}")
        if self.auth not in ("", "open", "required"):
            raise ValueError(f"auth must be open or required, not {self.auth!r}")
        if self.audit not in ("", "on", "off"):
            raise ValueError(f"audit must be on or off, not {self.audit!r}")
        if bool(self.tls_cert) != bool(self.tls_key):
            raise ValueError("tls_cert and tls_key go together")

    @property
    def auth_required(self) -> bool:
        """Whether every request must authenticate (a bearer token or an API key)."""
        return self.auth == "required" or (self.auth == "" and bool(self.issuers))

    @property
    def audit_enabled(self) -> bool:
        return self.audit == "on" or (self.audit == "" and self.auth_required)

    @property
    def open_loopback(self) -> bool:
        """The open loopback mode: no authentication and a loopback address (`make run`, the tests)."""
        return not self.auth_required and is_loopback(self.host)

    @property
    def requests_per_second(self) -> float:
        """The rate limit in force (0: none)."""
        if self.rate_limit >= 0:
            return self.rate_limit
        return 0.0 if self.open_loopback else 100.0

    def environment(self) -> dict[str, str]:
        """These settings as AGORA_* variables (worker processes read theirs from the environment)."""
        out: dict[str, str] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            out[f"AGORA_{f.name.upper()}"] = str(value).lower() if isinstance(value, bool) else str(value)
        return out

    @classmethod
    def from_env(cls, base: Mapping[str, object] | None = None, **overrides: object) -> Settings:
        """Settings from `base` (a configuration file's, broker.config), then AGORA_<NAME> variables, then the
        explicit overrides that are not None: defaults < file < environment < flags (record 0244)."""
        values: dict[str, object] = dict(base or {})
        for f in fields(cls):
            raw = os.environ.get(f"AGORA_{f.name.upper()}")
            if raw is not None:
                values[f.name] = _convert(f.type, raw)
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)  # type: ignore[arg-type]


def installation_source_id(number: int) -> str:
    """The default source id of the installation whose store drew `number` (Store.installation, record 0199)."""
    return f"urn:ngsi-ld:ContextSource:agora:{number:016x}"


def _convert(kind: object, raw: str) -> object:
    if kind in ("bool", bool):
        if raw.lower() not in ("true", "false", "1", "0", "yes", "no", "on", "off"):
            raise ValueError(f"expected true or false, got {raw!r}")
        return raw.lower() in ("true", "1", "yes", "on")
    if kind in ("int", int):
        return int(raw)
    if kind in ("float", float):
        return float(raw)
    return raw


def is_loopback(host: str) -> bool:
    """Whether a listening address is loopback only (a name is, when it is localhost)."""
    if host.lower() in ("localhost", "localhost.", "ip6-localhost"):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False
