"""meltano.yml declares each plugin exactly as the plugin describes itself in `--about`."""

from __future__ import annotations

import json
import subprocess
from typing import Any

import pytest
import yaml

from tests.e2e.tooling import PROJECT_BIN, ROOT

# SDK built-ins that only work with their capability. Neither plugin advertises these (tap-dap
# writes pre-encoded records past the SDK mapper), so neither may list their settings: Meltano
# users would be offered settings that are silently ignored.
CAPABILITY_SETTINGS = {
    "stream-maps": {"stream_maps", "stream_map_config", "faker_config"},
    "schema-flattening": {"flattening_enabled", "flattening_max_depth",
                          "flattening_max_key_length", "flattening_separator"},
}
PLUGINS = [("extractors", "tap-dap"), ("loaders", "target-dap-sql")]


def about(executable: str) -> dict[str, Any]:
    done = subprocess.run([str(PROJECT_BIN / executable), "--about", "--format=json"],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def declared(kind: str, name: str) -> dict[str, Any]:
    project = yaml.safe_load((ROOT / "meltano.yml").read_text())
    (plugin,) = [p for p in project["plugins"][kind] if p["name"] == name]
    return plugin


def expected_kind(prop: dict[str, Any]) -> str:
    types = prop.get("type", [])
    types = [t for t in ([types] if isinstance(types, str) else types) if t != "null"]
    if "enum" in prop:
        return "options"
    if prop.get("format") == "date-time":
        return "date_iso8601"
    return {"string": "string", "integer": "integer", "number": "decimal", "boolean": "boolean",
            "array": "array", "object": "object"}[types[0]]


def words(text: str) -> str:
    return " ".join(text.split())


@pytest.mark.parametrize(("kind", "name"), PLUGINS)
def test_capabilities_match_about(kind: str, name: str) -> None:
    assert declared(kind, name)["capabilities"] == about(name)["capabilities"]


@pytest.mark.parametrize(("kind", "name"), PLUGINS)
def test_settings_match_config_jsonschema(kind: str, name: str) -> None:
    info = about(name)
    plugin = declared(kind, name)
    schema = info["settings"]["properties"]
    for capability, names in CAPABILITY_SETTINGS.items():
        if capability not in info["capabilities"]:
            assert not names & set(schema), f"{name} lists {capability} settings it ignores"
    settings = {s["name"]: s for s in plugin["settings"]}
    assert sorted(settings) == sorted(schema)
    for setting_name, prop in schema.items():
        setting = settings[setting_name]
        where = f"{name}.{setting_name}"
        assert setting.get("label"), f"{where}: no label"
        if "title" in prop:
            assert setting["label"] == prop["title"], where
        assert words(setting.get("description", "")) == words(prop["description"]), where
        assert setting.get("kind") == expected_kind(prop), where
        assert bool(setting.get("sensitive")) == bool(prop.get("secret")), where
        if "enum" in prop:
            assert [o["value"] for o in setting["options"]] == prop["enum"], where
    required = info["settings"].get("required", [])
    groups = plugin.get("settings_group_validation", [required] if required else [])
    assert [sorted(g) for g in groups] == ([sorted(required)] if required else [])


def test_target_description_names_every_database() -> None:
    description = about("target-dap-sql")["description"]
    for database in ("SQLite", "PostgreSQL", "MariaDB/MySQL"):
        assert database in description, description


def test_project_works_offline_and_keeps_state() -> None:
    project = yaml.safe_load((ROOT / "meltano.yml").read_text())
    assert project["send_anonymous_usage_stats"] is False
    assert project["cli"]["disable_version_check"] is True
    environments = [e["name"] for e in project["environments"]]
    assert project["default_environment"] in environments
    assert "emulator" in environments
    assert project["requires_meltano"].startswith(">=4")
    for kind, name in PLUGINS:
        plugin = declared(kind, name)
        assert (plugin["pip_url"], plugin["executable"]) == ("-e .", name)


@pytest.mark.parametrize("name", ["tap-dap", "target-dap-sql"])
def test_readme_settings_table_is_current(name: str) -> None:
    """README's settings tables are `--about --format=markdown` verbatim (regenerate on drift)."""
    done = subprocess.run([str(PROJECT_BIN / name), "--about", "--format=markdown"],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    table = done.stdout.split("## Settings", 1)[1].strip().split("\n\n", 1)[0]
    readme = (ROOT / "README.md").read_text()
    block = readme.split(f"<!-- {name} settings -->\n", 1)[1].split(f"\n<!-- end {name}", 1)[0]
    assert block == table
