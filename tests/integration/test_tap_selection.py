"""Catalog property selection (SDK semantics) against the emulator: in-process, and through plain
pipes into a real SQLite database."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tap_dap.tap import TapDap
from tests.integration.test_tap_harness import run_tap, tap_config, write_json

TARGET_EXECUTABLE = str(Path(sys.executable).parent / "target-dap-sql")
TAP_EXECUTABLE = str(Path(sys.executable).parent / "tap-dap")


def discovered_catalog(config: dict[str, Any]) -> dict[str, Any]:
    return json.loads(json.dumps(TapDap(config=config).catalog_dict, default=str))


def set_selected(catalog: dict[str, Any], stream: str, prop: str, **metadata: Any) -> None:
    """Change the metadata of one property (``selected=False``, ``inclusion="unsupported"``)."""
    entry = next(s for s in catalog["streams"] if s["tap_stream_id"] == stream)
    for item in entry["metadata"]:
        if item["breadcrumb"] == ["properties", prop]:
            item["metadata"].update(metadata)
            return
    entry["metadata"].append({"breadcrumb": ["properties", prop], "metadata": metadata})


def select_all(catalog: dict[str, Any]) -> None:
    for entry in catalog["streams"]:
        for item in entry["metadata"]:
            if item["breadcrumb"] == []:
                item["metadata"]["selected"] = True


def run_with_catalog(emulator: Any, catalog: dict[str, Any], tables: list[str]) -> Any:
    config = tap_config(emulator, tables=tables)
    tap_run = run_tap_with_catalog(config, catalog)
    assert tap_run.error is None, tap_run.error
    return tap_run


def run_tap_with_catalog(config: dict[str, Any], catalog: dict[str, Any]) -> Any:
    original = TapDap.__init__

    def with_catalog(self: TapDap, *args: Any, **kwargs: Any) -> None:
        kwargs["catalog"] = catalog
        original(self, *args, **kwargs)

    TapDap.__init__ = with_catalog  # type: ignore[method-assign]
    try:
        return run_tap(config)
    finally:
        TapDap.__init__ = original  # type: ignore[method-assign]


def test_deselected_and_unsupported_properties_are_absent_from_schema_and_records(
    emulator_factory,
) -> None:
    emulator = emulator_factory(tables="canvas.users", rows=30)
    config = tap_config(emulator, tables=["users"])
    catalog = discovered_catalog(config)
    select_all(catalog)
    set_selected(catalog, "canvas-users", "name", selected=False)
    set_selected(catalog, "canvas-users", "pronouns", inclusion="unsupported")
    # key and replication metadata properties cannot be deselected
    set_selected(catalog, "canvas-users", "id", selected=False, inclusion="available")
    set_selected(catalog, "canvas-users", "meta", selected=False, inclusion="available")
    set_selected(catalog, "canvas-users", "no_such_column", selected=False)

    tap_run = run_with_catalog(emulator, catalog, ["users"])
    (schema,) = tap_run.of_type("SCHEMA", "canvas-users")
    props = schema["schema"]["properties"]
    assert "name" not in props and "pronouns" not in props
    assert {"id", "sortable_name", "meta", "_sdc_deleted_at"} <= set(props)
    dap_value = schema["schema"]["x-dap"]["schema"]["properties"]["value"]["properties"]
    assert "name" not in dap_value and "pronouns" not in dap_value and "locale" in dap_value
    records = tap_run.records("canvas-users")
    assert len(records) == 30
    truth = {row["key"]["id"]: row for row in emulator.truth("canvas", "users")}
    for record in records:
        expected = {**truth[record["id"]]["key"], **truth[record["id"]]["value"]}
        del expected["name"], expected["pronouns"]
        sent = {k: v for k, v in record.items() if k not in ("meta", "_sdc_deleted_at")}
        # DAP leaves null members out of its objects
        assert sent == {k: v for k, v in expected.items() if v is not None}


def test_deselecting_every_value_property_leaves_keys_and_meta(emulator_factory) -> None:
    emulator = emulator_factory(tables="canvas.accounts", rows=5)
    config = tap_config(emulator, tables=["accounts"])
    catalog = discovered_catalog(config)
    select_all(catalog)
    entry = catalog["streams"][0]
    for name in entry["schema"]["properties"]:
        set_selected(catalog, "canvas-accounts", name, selected=False)
    tap_run = run_with_catalog(emulator, catalog, ["accounts"])
    (schema,) = tap_run.of_type("SCHEMA", "canvas-accounts")
    assert sorted(schema["schema"]["properties"]) == ["_sdc_deleted_at", "id", "meta"]
    assert [sorted(r) for r in tap_run.records("canvas-accounts")] == [
        ["_sdc_deleted_at", "id", "meta"]
    ] * 5


def test_nothing_deselected_sends_every_property(emulator_factory) -> None:
    emulator = emulator_factory(tables="canvas.accounts", rows=3)
    config = tap_config(emulator, tables=["accounts"])
    catalog = discovered_catalog(config)
    select_all(catalog)
    tap_run = run_with_catalog(emulator, catalog, ["accounts"])
    (schema,) = tap_run.of_type("SCHEMA", "canvas-accounts")
    assert list(schema["schema"]["properties"]) == list(
        catalog["streams"][0]["schema"]["properties"]
    )


def test_discovered_catalog_lists_only_real_properties(emulator_factory) -> None:
    emulator = emulator_factory(tables="canvas.accounts", rows=1)
    catalog = discovered_catalog(tap_config(emulator, tables=["accounts"]))
    (entry,) = catalog["streams"]
    # the DAP schema is not embedded in the catalog, so tools see no fake key.*/value.* members
    assert entry["schema"]["x-dap"] == {"namespace": "canvas", "table": "accounts", "version": 1}
    crumbs = [tuple(m["breadcrumb"]) for m in entry["metadata"] if len(m["breadcrumb"]) == 2]
    assert crumbs == [("properties", p) for p in entry["schema"]["properties"]]
    inclusion = {m["breadcrumb"][-1]: m["metadata"]["inclusion"]
                 for m in entry["metadata"] if len(m["breadcrumb"]) == 2}  # fmt: skip
    assert inclusion["id"] == inclusion["meta"] == inclusion["_sdc_deleted_at"] == "automatic"


@pytest.fixture
def users_pipe(emulator_factory, tmp_path: Path):
    emulator = emulator_factory(tables="canvas.users", rows=40, seed=3)
    tap_config_file = write_json(tmp_path / "tap.json", tap_config(emulator, tables=["users"]))
    db = tmp_path / "dap.db"
    target_config_file = write_json(tmp_path / "target.json",
                                    {"sqlalchemy_url": f"sqlite:///{db}"})  # fmt: skip

    def run(catalog: dict[str, Any]) -> subprocess.CompletedProcess[bytes]:
        catalog_file = write_json(tmp_path / "catalog.json", catalog)
        tap_argv = [TAP_EXECUTABLE, "--config", tap_config_file, "--catalog", catalog_file]
        tap = subprocess.Popen(tap_argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        target = subprocess.run(
            [TARGET_EXECUTABLE, "--config", target_config_file],
            stdin=tap.stdout, capture_output=True, timeout=120, check=False,
        )  # fmt: skip
        assert tap.wait(timeout=60) == 0
        return target

    return emulator, tap_config_file, db, run


def test_deselected_column_is_absent_from_the_database(users_pipe) -> None:
    emulator, tap_config_file, db, run = users_pipe
    config = json.loads(Path(tap_config_file).read_text())
    catalog = discovered_catalog(config)
    select_all(catalog)
    set_selected(catalog, "canvas-users", "name", selected=False)
    result = run(catalog)
    assert result.returncode == 0, result.stderr.decode()[-2000:]
    with sqlite3.connect(db) as conn:
        columns = [r[1] for r in conn.execute('PRAGMA table_info("canvas__users")')]
        assert conn.execute('SELECT COUNT(*) FROM "canvas__users"').fetchone()[0] == 40
    assert "name" not in columns and "sortable_name" in columns and "id" in columns
    # no clear name anywhere in the file (names that no other column of the table holds)
    truth = emulator.truth("canvas", "users")
    others = "\n".join(json.dumps(v) for row in truth for k, v in row["value"].items()
                       if k != "name")  # fmt: skip
    names = {row["value"]["name"] for row in truth if row["value"]["name"]}
    unique = [n for n in names if n not in others]
    assert unique
    content = db.read_bytes()
    assert [n for n in unique if n.encode() in content] == []


def test_empty_dap_table_replaces_the_table_but_a_dropped_one_does_not(
    emulator_factory, tmp_path: Path
) -> None:
    """End to end: the tap's row count lets a really empty DAP table through the guard."""
    emulator = emulator_factory(tables="canvas.accounts", rows=4)
    db = tmp_path / "dap.db"
    target_config = write_json(tmp_path / "target.json", {"sqlalchemy_url": f"sqlite:///{db}"})
    tap_config_file = write_json(tmp_path / "tap.json", tap_config(emulator, tables=["accounts"]))

    def pipe() -> tuple[list[dict[str, Any]], subprocess.CompletedProcess[bytes]]:
        tap = subprocess.run([TAP_EXECUTABLE, "--config", tap_config_file],
                             capture_output=True, timeout=120, check=True)  # fmt: skip
        done = subprocess.run([TARGET_EXECUTABLE, "--config", target_config], input=tap.stdout,
                              capture_output=True, timeout=120, check=False)  # fmt: skip
        return [json.loads(line) for line in tap.stdout.splitlines()], done

    assert pipe()[1].returncode == 0
    emulator.advance("canvas", "accounts", deletes=4)
    emulator.reload("canvas", "accounts")  # the next run must take a snapshot: of no rows
    assert emulator.truth("canvas", "accounts") == []
    messages, result = pipe()
    assert result.returncode == 0, result.stderr.decode()[-1500:]
    closing = [m for m in messages if m["type"] == "ACTIVATE_VERSION"][-1]
    assert closing["x-dap-rows"] == 0
    assert not [m for m in messages if m["type"] == "RECORD"]
    with sqlite3.connect(db) as conn:
        assert conn.execute('SELECT COUNT(*) FROM "canvas__accounts"').fetchone()[0] == 0
