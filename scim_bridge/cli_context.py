"""What every ``scim-bridge`` command needs from the environment: settings, storage, profiles.

Built on first use, so ``--help`` needs none of it; shared by :mod:`scim_bridge.cli` and the admin
commands through click's context object.
"""

from __future__ import annotations

import click

from scim_bridge.mappings.loader import load_profiles
from scim_bridge.mappings.model import MappingError
from scim_bridge.mappings.model import Profile
from scim_bridge.settings import Settings
from scim_bridge.settings import SettingsError
from scim_bridge.storage.session import Storage


class Context:
    """Settings and storage, built on first use (``--help`` needs neither)."""

    def __init__(self) -> None:
        self._settings: Settings | None = None
        self._storage: Storage | None = None
        self._profiles: dict[str, Profile] | None = None

    @property
    def settings(self) -> Settings:
        """Return the settings from the environment."""
        if self._settings is None:
            try:
                self._settings = Settings.from_env()
            except SettingsError as exc:
                raise click.ClickException(str(exc)) from exc
        return self._settings

    @property
    def storage(self) -> Storage:
        """Return the storage for the configured database."""
        if self._storage is None:
            self._storage = Storage.build(self.settings.database_url,
                                          busy_timeout_ms=self.settings.sqlite_busy_timeout_ms)
        return self._storage

    @property
    def profiles(self) -> dict[str, Profile]:
        """Return the mapping profiles of the configured mappings directory (refuse if one is invalid)."""
        if self._profiles is None:
            try:
                self._profiles = load_profiles(self.settings.mappings_path())
            except MappingError as exc:
                raise click.ClickException(str(exc)) from exc
        return self._profiles

    def profile(self, name: str) -> Profile:
        """Return the loaded profile *name*."""
        try:
            return self.profiles[name]
        except KeyError:
            raise click.ClickException(f"mapping profile {name!r} is not loaded (check "
                                       f"{self.settings.mappings_path()})") from None


def current() -> Context:
    """Return the command's context object (created on first use)."""
    return click.get_current_context().ensure_object(Context)
