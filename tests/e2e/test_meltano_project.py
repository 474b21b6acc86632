"""meltano.yml declares each plugin exactly as the plugin describes itself in `--about`."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.e2e.tooling import PROJECT_BIN, ROOT, base_env

# SDK built-ins that only work with their capability: a plugin that does not advertise it may not
# list their settings (Meltano users would be offered settings that are silently ignored).
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
    if types == ["number", "string"]:  # fractional seconds: Meltano 4.4 cannot pass a decimal
        return "string"                # that comes from an environment variable
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
        # `meltano config list --all` shows the plugin's own default, not None
        assert setting.get("value") == prop.get("default"), where
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
        # the project itself, its dependencies held to uv.lock's versions
        # from any working directory (Meltano expands the variable; quotes keep spaces)
        assert plugin["pip_url"] == ('-e "${MELTANO_PROJECT_ROOT}" '
                                     '-c "${MELTANO_PROJECT_ROOT}/requirements/plugins.txt"')
        assert plugin["executable"] == name


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


def test_env_example_then_config_set_gives_the_value_set(meltano_bin: Path, tmp_path: Path) -> None:
    """README: `cp .env.example .env`, then `meltano config set …`: the value set is in effect."""
    for name in ("meltano.yml", ".env.example"):
        shutil.copy(ROOT / name, tmp_path / name)
    shutil.copy(tmp_path / ".env.example", tmp_path / ".env")
    env = {**base_env(tmp_path / ".meltano"), "MELTANO_PROJECT_ROOT": str(tmp_path)}

    def meltano(*args: str) -> str:
        done = subprocess.run([str(meltano_bin), *args], cwd=tmp_path, env=env,
                              capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr[-2000:]
        return done.stdout

    meltano("config", "set", "tap-dap", "client_id", "us-east-1#4242")
    meltano("config", "set", "tap-dap", "client_secret", "s3cret-value")
    printed = json.loads(meltano("config", "--unsafe", "print", "tap-dap"))
    assert (printed["client_id"], printed["client_secret"]) == ("us-east-1#4242", "s3cret-value")
    assert printed["base_url"] == "https://api-gateway.instructure.com"  # meltano.yml's `value:`


def test_another_meltano_project_installs_the_plugins_from_git(
        meltano_bin: Path, tmp_path: Path) -> None:
    """README "Use the plugins in your own Meltano project": pip_url `git+…` (here the clone)."""
    readme = (ROOT / "README.md").read_text()
    block = readme.split("<!-- external meltano.yml -->")[1].split("```yaml\n")[1].split("```")[0]
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True,
                          check=True).stdout.strip()
    project = yaml.safe_load(block)
    for plugin in (*project["plugins"]["extractors"], *project["plugins"]["loaders"]):
        assert plugin["pip_url"] == "git+https://git.example.edu/data/tap-dap.git@v0.1.0"
        plugin["pip_url"] = f"git+{ROOT.as_uri()}@{head}"
    (tmp_path / "meltano.yml").write_text(yaml.safe_dump(project))
    env = {**base_env(tmp_path / ".meltano"), "MELTANO_PROJECT_ROOT": str(tmp_path)}
    done = subprocess.run([str(meltano_bin), "install"], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    for name in ("tap-dap", "target-dap-sql"):
        done = subprocess.run([str(meltano_bin), "invoke", name, "--about", "--format=json"],
                              cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr[-2000:]
        assert json.loads(done.stdout)["name"] == name
