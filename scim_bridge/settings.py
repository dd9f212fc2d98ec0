"""Typed, frozen settings read from the environment (``SCIM_BRIDGE_*``) and an optional TOML file.

Nothing else in the package reads ``os.environ``: the app factory takes a :class:`Settings`.
"""

from __future__ import annotations

import dataclasses
import os
import tomllib
from dataclasses import dataclass
from dataclasses import field
from pathlib import Path
from typing import Any

PREFIX = "SCIM_BRIDGE_"
EXTENSION_KEY = "scim_bridge.settings"
"""Where the app factory keeps its :class:`Settings` in ``app.extensions`` (one place, read by all)."""
DEFAULT_SQLITE_PATH = Path("instance") / "scim_bridge.db"
# The mapping profiles shipped with the project (top-level ``mappings/``, next to the package).
DEFAULT_MAPPINGS_DIR = Path(__file__).resolve().parent.parent / "mappings"


class SettingsError(ValueError):
    """A configuration value is missing or malformed."""


def _default_database_url() -> str:
    return f"sqlite:///{DEFAULT_SQLITE_PATH.resolve()}"


@dataclass(frozen=True, slots=True)
class Settings:
    """Service configuration. Each field maps to ``SCIM_BRIDGE_<FIELD_NAME_UPPER>``."""

    database_url: str = field(default_factory=_default_database_url)
    """SQLAlchemy URL; SQLite (default, under ``instance/``) or ``postgresql+psycopg://...``."""

    secret_key: str = ""
    """Flask secret key (sessions of the admin console); a random one is generated when empty."""

    base_url: str = ""
    """Public base URL (``https://host``) used in ``meta.location``; derived from the request when empty."""

    max_page_size: int = 200
    """Largest ``count`` a list request may return (advertised as ``filter.maxResults``)."""

    default_page_size: int = 100
    """Page size when the client does not send ``count``."""

    discovery_public: bool = False
    """Serve ``/ServiceProviderConfig``, ``/ResourceTypes`` and ``/Schemas`` without a token."""

    max_request_bytes: int = 10 * 1024 * 1024
    """Largest accepted request body (413 beyond)."""

    sqlite_busy_timeout_ms: int = 30_000
    """How long SQLite waits for a lock before failing a write."""

    db_pool_size: int = 5
    """Connection pool size per process (PostgreSQL)."""

    log_level: str = "INFO"
    """Level of the JSON request log."""

    documentation_uri: str = "https://github.com/scim-bridge/scim-bridge#readme"
    """``documentationUri`` in ServiceProviderConfig."""

    oauth_token_lifetime_seconds: int = 3600
    """Lifetime of access tokens issued by ``POST /oauth/token`` (RFC 6749 §5.1 ``expires_in``)."""

    client_secret_grace_seconds: int = 0
    """How long a client's previous secret keeps working after ``client rotate-secret`` (default: not at all)."""

    rate_limit_per_minute: int = 6000
    """Requests per minute per credential on token-protected routes (0 disables; 429 beyond)."""

    token_rate_limit_per_minute: int = 600
    """Requests per minute on ``/oauth/*``, per remote address and per authenticated client (0 disables)."""

    failed_auth_delay_ms: int = 250
    """First delay after repeated failed client authentication; doubles per failure (0 disables)."""

    failed_auth_max_delay_ms: int = 2000
    """Upper bound of the failed-authentication delay."""

    failed_auth_window_seconds: int = 900
    """How long failed client authentications are remembered for the delay."""

    trusted_proxy_hops: int = 0
    """Reverse proxies in front that set ``X-Forwarded-For``/``-Proto`` (the remote address for limits)."""

    bulk_max_operations: int = 1000
    """Most operations one ``POST /Bulk`` may carry (``bulk.maxOperations``; 413 ``tooLarge`` beyond)."""

    bulk_max_payload_bytes: int = 1024 * 1024
    """Largest ``POST /Bulk`` body (``bulk.maxPayloadSize``; 413 ``tooLarge`` beyond); capped by max_request_bytes."""

    mappings_dir: str = ""
    """Directory of the mapping profiles (``*.toml``); empty means the project's ``mappings/``."""

    console_session_lifetime_seconds: int = 8 * 3600
    """Longest life of an admin console session, from sign-in (never beyond the credential's expiry)."""

    console_idle_timeout_seconds: int = 1800
    """An admin console session unused this long is signed out."""

    console_cookie_secure: str = "auto"
    """``Secure`` flag of the console cookie: ``auto`` (when the request is https), ``true`` or ``false``."""

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None) -> Settings:
        """Build settings from an optional TOML file (``SCIM_BRIDGE_CONFIG``) overlaid by the environment."""
        env = dict(os.environ if environ is None else environ)
        values: dict[str, Any] = {}
        config_file = env.get(PREFIX + "CONFIG")
        if config_file:
            values.update(cls._read_toml(Path(config_file)))
        for f in dataclasses.fields(cls):
            key = PREFIX + f.name.upper()
            if key in env:
                values[f.name] = env[key]
        return cls.from_mapping(values)

    @classmethod
    def from_mapping(cls, values: dict[str, Any]) -> Settings:
        """Build settings from plain values, converting strings to each field's type."""
        known = {f.name: f for f in dataclasses.fields(cls)}
        kwargs: dict[str, Any] = {}
        for name, raw in values.items():
            if name not in known:
                raise SettingsError(f"unknown setting {name!r}")
            kwargs[name] = _convert(name, known[name].type, raw)
        return cls(**kwargs)

    @staticmethod
    def _read_toml(path: Path) -> dict[str, Any]:
        try:
            with path.open("rb") as fh:
                data = tomllib.load(fh)
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise SettingsError(f"cannot read config file {path}: {exc}") from exc
        section = data.get("scim_bridge", data)
        return {str(k).lower(): v for k, v in section.items()}

    def mappings_path(self) -> Path:
        """Return the directory the mapping profiles are loaded from."""
        return Path(self.mappings_dir) if self.mappings_dir else DEFAULT_MAPPINGS_DIR

    def replace(self, **changes: Any) -> Settings:
        """Return a copy with some fields changed (tests)."""
        return dataclasses.replace(self, **changes)


def _convert(name: str, type_name: Any, raw: Any) -> Any:
    type_name = str(type_name)
    if type_name == "bool":
        if isinstance(raw, bool):
            return raw
        text = str(raw).strip().lower()
        if text in {"1", "true", "yes", "on"}:
            return True
        if text in {"0", "false", "no", "off", ""}:
            return False
        raise SettingsError(f"{PREFIX}{name.upper()}: expected a boolean, got {raw!r}")
    if type_name == "int":
        try:
            return int(raw)
        except (TypeError, ValueError) as exc:
            raise SettingsError(f"{PREFIX}{name.upper()}: expected an integer, got {raw!r}") from exc
    return str(raw)
