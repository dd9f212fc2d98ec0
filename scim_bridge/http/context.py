"""Request-scoped helpers shared by the blueprints."""

from __future__ import annotations

from functools import lru_cache

from flask import current_app
from flask import request
from werkzeug.sansio.utils import get_current_url

from scim_bridge.auth import TokenContext
from scim_bridge.auth import current_context
from scim_bridge.http.request_log import request_id
from scim_bridge.mappings.model import Profile
from scim_bridge.scim.errors import ScimError
from scim_bridge.scim.resource import Options
from scim_bridge.settings import EXTENSION_KEY
from scim_bridge.settings import Settings

SCIM_PREFIX = "/scim/v2"
PROFILES_KEY = "scim_bridge.mappings"


class ProfileNotLoaded(ScimError):
    """The tenant names a mapping profile this server did not load (a deployment error)."""

    status = 500


def settings() -> Settings:
    """Return the running app's settings."""
    value: Settings = current_app.extensions[EXTENSION_KEY]
    return value


def scim_base_url() -> str:
    """Return the absolute SCIM base URL used in ``meta.location`` and ``$ref``."""
    configured = settings().base_url.rstrip("/")
    if configured:
        return configured + SCIM_PREFIX
    return _base_url_for(request.scheme, request.host)


@lru_cache(maxsize=64)
def _base_url_for(scheme: str, host: str) -> str:
    """Return the SCIM base URL of requests to *host*: Werkzeug's ``host_url``, built once per host.

    Building it (IRI decoding included) cost about as much as reading a user; a deployment sees a
    handful of hosts (``request.host`` is already checked against ``TRUSTED_HOSTS`` when set).
    """
    return get_current_url(scheme, host).rstrip("/") + SCIM_PREFIX


def tenant() -> TokenContext:
    """Return the tenant context of the validated token."""
    return current_context()


def resource_options(token: TokenContext | None = None) -> Options:
    """Return how strictly to read resource bodies for the current tenant (or *token*'s)."""
    settings_of = (token or tenant()).tenant_settings
    return _STRICT if not settings_of.get("ignore_unknown_attributes", False) else _LENIENT


_STRICT = Options(ignore_unknown=False)
_LENIENT = Options(ignore_unknown=True)


def profiles() -> dict[str, Profile]:
    """Return the mapping profiles loaded at start-up, by name."""
    loaded: dict[str, Profile] = current_app.extensions[PROFILES_KEY]
    return loaded


def tenant_profile(token: TokenContext | None = None) -> Profile:
    """Return the mapping profile of the current request's tenant (or *token*'s)."""
    name = (token or tenant()).tenant_profile
    found = profiles().get(name)
    if found is None:
        raise ProfileNotLoaded(f"the tenant's mapping profile '{name}' is not loaded on this server")
    return found


def current_request_id() -> str | None:
    """Return the id of the current request (it goes into the event log)."""
    return request_id() or None
