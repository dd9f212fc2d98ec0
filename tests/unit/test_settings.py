"""Settings come from the environment (``SCIM_BRIDGE_*``) over an optional TOML file."""

from __future__ import annotations

import pytest

from scim_bridge.settings import Settings
from scim_bridge.settings import SettingsError


def test_defaults_use_sqlite_under_instance():
    settings = Settings.from_env({})
    assert settings.database_url.startswith("sqlite:///") and settings.database_url.endswith("instance/scim_bridge.db")
    assert settings.discovery_public is False and settings.max_page_size == 200


def test_environment_converts_types():
    settings = Settings.from_env({"SCIM_BRIDGE_DATABASE_URL": "postgresql+psycopg://u@h/db",
                                  "SCIM_BRIDGE_MAX_PAGE_SIZE": "50", "SCIM_BRIDGE_DISCOVERY_PUBLIC": "yes",
                                  "UNRELATED": "ignored"})
    assert settings.database_url == "postgresql+psycopg://u@h/db"
    assert settings.max_page_size == 50 and settings.discovery_public is True


def test_config_file_is_overlaid_by_environment(tmp_path):
    config = tmp_path / "scim.toml"
    config.write_text('[scim_bridge]\nmax_page_size = 75\nbase_url = "https://scim.example.com"\n')
    settings = Settings.from_env({"SCIM_BRIDGE_CONFIG": str(config), "SCIM_BRIDGE_MAX_PAGE_SIZE": "10"})
    assert settings.base_url == "https://scim.example.com" and settings.max_page_size == 10


@pytest.mark.parametrize(("env", "message"), [
    ({"SCIM_BRIDGE_MAX_PAGE_SIZE": "many"}, "expected an integer"),
    ({"SCIM_BRIDGE_DISCOVERY_PUBLIC": "perhaps"}, "expected a boolean"),
    ({"SCIM_BRIDGE_CONFIG": "/nonexistent/scim.toml"}, "cannot read config file"),
])
def test_bad_values_are_clear_errors(env, message):
    with pytest.raises(SettingsError, match=message):
        Settings.from_env(env)


def test_unknown_key_in_config_file_is_refused(tmp_path):
    config = tmp_path / "scim.toml"
    config.write_text("max_pagesize = 5\n")
    with pytest.raises(SettingsError, match="unknown setting"):
        Settings.from_env({"SCIM_BRIDGE_CONFIG": str(config)})
