"""SDK features through a real `meltano run tap-dap target-dap-sql` on the emulator: property
selection (Meltano's `select` extra), stream maps with a salted hash, an alias, a filter, METRIC
lines, and `meltano select --list` showing the real properties only."""

from __future__ import annotations

import hashlib
import json
import re
import sqlite3
import subprocess
from pathlib import Path

from tests.e2e.tooling import MeltanoProject
from tests.emulator_fixture import RunningEmulator
from tests.integration.test_tap_harness import tap_config, write_json
from tests.integration.test_target_stream_maps import BIN, _columns
from tests.unit.target.dap_messages import dump_sqlite

RUN = ("run", "--no-install", "tap-dap", "target-dap-sql")
SALT = "s3cr3t-salt"


def _db(project: MeltanoProject) -> Path:
    return Path(project.env["TARGET_DAP_SQL_SQLALCHEMY_URL"].removeprefix("sqlite:///"))


def test_selection_and_stream_maps_through_meltano(
    meltano_project: MeltanoProject, dap_emulator: RunningEmulator
) -> None:
    extra = {
        "TAP_DAP_TABLES": '["accounts", "courses", "users"]',
        # `meltano select tap-dap --exclude canvas-users pronouns`, without editing meltano.yml
        "TAP_DAP__SELECT": json.dumps(["canvas-*.*", "!canvas-users.pronouns"]),
        "TAP_DAP_STREAM_MAPS": json.dumps({
            "canvas-users": {"name": "sha256(name + config['salt']) if name else None"},
            "canvas-accounts": {"__alias__": "accts"},
            "canvas-courses": {"__filter__": "id < 10"},
        }),
        "TAP_DAP_STREAM_MAP_CONFIG": json.dumps({"salt": SALT}),
    }
    result = meltano_project.run(*RUN, extra_env=extra)
    db = _db(meltano_project)
    with sqlite3.connect(db) as conn:
        users_columns = [r[1] for r in conn.execute('PRAGMA table_info("canvas__users")')]
        names = dict(conn.execute('SELECT id, name FROM "canvas__users"').fetchall())
        course_ids = sorted(r[0] for r in conn.execute('SELECT id FROM "canvas__courses"'))
        accounts = conn.execute('SELECT COUNT(*) FROM "canvas__accts"').fetchone()[0]
        synced = conn.execute('SELECT source_table, target_table FROM '
                              '"instructure_dap__table_sync" ORDER BY 1').fetchall()  # fmt: skip
    assert "pronouns" not in users_columns and "name" in users_columns
    truth = {r["key"]["id"]: r["value"].get("name") for r in dap_emulator.truth("canvas", "users")}
    assert names == {i: hashlib.sha256((n + SALT).encode()).hexdigest() if n else None
                     for i, n in truth.items()}  # fmt: skip
    assert course_ids == sorted(r["key"]["id"] for r in dap_emulator.truth("canvas", "courses")
                                if r["key"]["id"] < 10)  # fmt: skip
    assert accounts == 40
    assert synced == [("accounts", "accts"), ("courses", "courses"), ("users", "users")]

    # METRIC lines of both plugins reach Meltano's log (structured logging), as Meltano shows them
    points = re.findall(r"\] (tap-dap|target-dap-sql)\s+METRIC\s+metric_name=(\w+) "
                        r"metric_value=(\S+)", result.stdout + result.stderr)  # fmt: skip
    counts = sorted((plugin, int(value)) for plugin, metric, value in points
                    if metric == "record_count")  # fmt: skip
    # the tap counts the DAP rows it read, the target the rows it committed (after the filter)
    assert counts == [("tap-dap", 40)] * 3 + [("target-dap-sql", 9)] + [("target-dap-sql", 40)] * 2
    tap_metrics = [metric for plugin, metric, _ in points if plugin == "tap-dap"]
    assert tap_metrics.count("sync_duration") == 3 and tap_metrics.count("job_duration") == 6


def test_select_list_shows_only_real_properties(meltano_project: MeltanoProject) -> None:
    extra = {"TAP_DAP_TABLES": '["accounts"]'}
    result = meltano_project.run("select", "tap-dap", "--list", "--all", extra_env=extra)
    listed = re.findall(r"canvas-accounts\.([\w.]+)", result.stdout)
    assert listed, result.stdout
    assert not [p for p in listed if p.startswith(("key", "value", "x-dap"))], listed
    top = {p.split(".")[0] for p in listed}
    assert {"id", "name", "meta", "_sdc_deleted_at"} <= top


def test_fatal_tap_error_shows_as_an_error_in_meltano(meltano_project: MeltanoProject) -> None:
    result = meltano_project.run(*RUN, extra_env={"TAP_DAP_CLIENT_SECRET": "wrong-secret"},
                                 check=False)  # fmt: skip
    assert result.returncode != 0
    output = result.stdout + result.stderr
    # (Meltano's own "Catalog discovery failed" error quotes the plugin's raw stderr as well)
    shown = [line for line in output.splitlines()
             if re.search(r"\] tap-dap\s+tap-dap: error:", line)]  # fmt: skip
    assert len(shown) == 1, output[-3000:]
    assert re.search(r"\[error\s*\] tap-dap\s+tap-dap: error: DAP login at ", shown[0]), shown
    assert "wrong-secret" not in output


def _pipe(tap_file: str, target_file: str, mapper: Path | None = None,
          mapper_file: str | None = None) -> subprocess.CompletedProcess[bytes]:
    data = subprocess.run([str(BIN / "tap-dap"), "--config", tap_file], capture_output=True,
                          timeout=120, check=True).stdout  # fmt: skip
    if mapper is not None:
        data = subprocess.run([str(mapper), "--config", str(mapper_file)], input=data,
                              capture_output=True, timeout=120, check=True).stdout  # fmt: skip
    return subprocess.run([str(BIN / "target-dap-sql"), "--config", target_file], input=data,
                          capture_output=True, timeout=120, check=False)  # fmt: skip


def test_meltano_map_transform_between_gives_the_same_database(
    emulator_factory, generic_plugin, tmp_path: Path
) -> None:
    """The same maps in tap-dap or in meltano-map-transform 0.12.3 (a mapper between tap and
    target). Maps that never see a null: DAP leaves nulls out, and the SDK mapper fails on a
    name that is not defined (tap-dap fills them in, see tap_dap/mapping.py)."""
    emulator = emulator_factory(tables="canvas.users,canvas.accounts,canvas.courses", rows=25,
                                seed=3)  # fmt: skip
    maps = {"canvas-users": {"id_hash": "sha256(str(id) + config['salt'])",
                             "__filter__": "id > 3"},
            "canvas-accounts": {"__alias__": "accts", "name": None}}  # fmt: skip
    mapping = {"stream_maps": maps, "stream_map_config": {"salt": "s"}}
    mapper = generic_plugin("meltano-map-transform")
    mapper_file = write_json(tmp_path / "mapper.json", mapping)
    plain_tap = write_json(tmp_path / "plain-tap.json", tap_config(emulator))
    dumps = []
    for side in ("tap", "mapper"):
        db = tmp_path / f"{side}.db"
        target_file = write_json(tmp_path / f"{side}-target.json",
                                 {"sqlalchemy_url": f"sqlite:///{db}"})
        if side == "tap":
            done = _pipe(write_json(tmp_path / "tap.json", tap_config(emulator, **mapping)),
                         target_file)
        else:
            done = _pipe(plain_tap, target_file, mapper, mapper_file)
        assert done.returncode == 0, done.stderr.decode()[-2000:]
        dump = dump_sqlite(db)
        dump["instructure_dap__table_sync"] = sorted(
            (r[1], r[2], r[5], r[6]) for r in dump["instructure_dap__table_sync"])
        dumps.append(dump)
    assert dumps[0] == dumps[1]
    assert len(dumps[0]["canvas__accts"]) == 25 and len(dumps[0]["canvas__users"]) == 22
    assert _columns(tmp_path / "mapper.db", "canvas__users")[-1] == "id_hash"

    # meltano-map-transform passes SCHEMA and both ACTIVATE_VERSIONs of a stream mapped to null:
    # an empty snapshot, which must not replace the courses table that has rows
    courses = 'SELECT COUNT(*) FROM "canvas__courses"'
    with sqlite3.connect(tmp_path / "mapper.db") as conn:
        assert conn.execute(courses).fetchone() == (25,)
    dropped = write_json(tmp_path / "drop.json", {"stream_maps": {"canvas-courses": None}})
    done = _pipe(plain_tap, str(tmp_path / "mapper-target.json"), mapper, dropped)
    assert done.returncode == 1
    errors = [line for line in done.stderr.decode().splitlines() if "| ERROR" in line]
    assert len(errors) == 1 and "stream 'canvas-courses'" in errors[0]
    assert "allow_empty_snapshots: true" in errors[0]
    with sqlite3.connect(tmp_path / "mapper.db") as conn:
        assert conn.execute(courses).fetchone() == (25,)


def test_meltano_map_transform_as_a_mapper_plugin(
    meltano_project: MeltanoProject, dap_emulator: RunningEmulator, generic_plugin,
    tmp_path: Path,
) -> None:
    """`meltano run tap-dap <mapping> target-dap-sql` with meltano-map-transform declared as a
    `mappers:` plugin gives the database the same maps give inside tap-dap."""
    import yaml

    from tests.e2e.tooling import ROOT

    maps = {"canvas-users": {"id_hash": "sha256(str(id) + config['salt'])",
                             "__filter__": "id > 3"},
            "canvas-accounts": {"__alias__": "accts", "name": None}}  # fmt: skip
    map_config = {"salt": SALT}
    project = tmp_path / "project"
    project.mkdir()
    definition = yaml.safe_load((ROOT / "meltano.yml").read_text())
    definition["plugins"]["mappers"] = [{
        # a namespace makes it a custom definition: Meltano then never asks its (online) Hub
        "name": "meltano-map-transform", "namespace": "meltano_map_transform",
        "pip_url": "meltano-map-transform==0.12.3",
        "executable": "meltano-map-transform",
        "mappings": [{"name": "hash-users", "config": {
            "stream_maps": maps, "stream_map_config": map_config}}],
    }]
    (project / "meltano.yml").write_text(yaml.safe_dump(definition))
    # The locked venv stands in for what `meltano install` would build (runs use --no-install).
    venv = generic_plugin("meltano-map-transform").parent.parent
    mappers = Path(meltano_project.env["MELTANO_SYS_DIR_ROOT"]) / "mappers"
    (mappers / "meltano-map-transform").mkdir(parents=True)
    (mappers / "meltano-map-transform" / "venv").symlink_to(venv, target_is_directory=True)
    tables = {"TAP_DAP_TABLES": '["accounts", "users"]'}
    dumps = []
    for side in ("mapper", "tap"):
        db = tmp_path / f"{side}.db"
        env = {**tables, "TARGET_DAP_SQL_SQLALCHEMY_URL": f"sqlite:///{db}"}
        if side == "mapper":
            meltano_project.run("--cwd", str(project), "run", "--no-install", "tap-dap",
                                "hash-users", "target-dap-sql", extra_env=env)  # fmt: skip
        else:
            # its own state: Meltano's state ID leaves the mapper out, so runs would share it
            env |= {"TAP_DAP_STREAM_MAPS": json.dumps(maps),
                    "TAP_DAP_STREAM_MAP_CONFIG": json.dumps(map_config),
                    "MELTANO_DATABASE_URI": f"sqlite:///{tmp_path}/tap-side-meltano.db"}
            meltano_project.run(*RUN, extra_env=env)
        dump = dump_sqlite(db)
        dump["instructure_dap__table_sync"] = sorted(
            (r[1], r[2], r[5], r[6]) for r in dump["instructure_dap__table_sync"])
        dumps.append(dump)
    assert dumps[0] == dumps[1]
    truth = sorted(r["key"]["id"] for r in dap_emulator.truth("canvas", "users"))
    users = dumps[0]["canvas__users"]
    assert len(users) == len([i for i in truth if i > 3]) and len(dumps[0]["canvas__accts"]) == 40
    assert ("accounts", "accts") in [(r[1], r[3]) for r in dumps[0]["instructure_dap__table_sync"]]
