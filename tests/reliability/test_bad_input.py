"""Issue 9.3: the bad-input corpus (corpus.json): each case is one clear error or handled right.

Strings of the form ``$<N><c>`` in the corpus stand for the character c repeated N times (huge
values without a huge data file).
"""

from __future__ import annotations

import json
import re
import sqlite3
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.emulator_fixture import RunningEmulator
from tests.reliability.fixtures import write_table
from tests.reliability.outcomes import dump, error_lines
from tests.reliability.pipeline import TAP, Workdir
from tests.reliability.proxy import FaultProxy, Rule, object_lines
from tests.unit.target.dap_messages import run_cli, singer_schema, submissions_schema

CORPUS = json.loads((Path(__file__).with_name("corpus.json")).read_text())["cases"]
STREAM = "canvas-submissions"
REPEAT = re.compile(r"^\$(\d+)(.)$")
TS = "2024-01-10T00:00:00Z"


def expand(value: Any) -> Any:
    if isinstance(value, str) and (match := REPEAT.match(value)):
        return match.group(2) * int(match.group(1))
    if isinstance(value, dict):
        return {k: expand(v) for k, v in value.items()}
    return value


def singer_line(item: Any) -> bytes:
    if item == "$SCHEMA":
        message = singer_schema("canvas", "submissions", 1, submissions_schema(1))
    elif "raw" in item:
        return item["raw"].encode() + b"\n"
    elif "raw_latin1" in item:
        return item["raw_latin1"].encode("latin-1") + b"\n"
    elif "record" in item:
        body = {**expand(item["record"]), "meta": {"action": "U", "ts": TS},
                "_sdc_deleted_at": None}
        message = {"type": "RECORD", "stream": STREAM, "record": body}
    elif "delete" in item:
        body = {**item["delete"], "meta": {"action": "D", "ts": TS}, "_sdc_deleted_at": TS}
        message = {"type": "RECORD", "stream": STREAM, "record": body}
    else:
        message = item
    return json.dumps(message).encode() + b"\n"


def assert_clean_error(returncode: int, stderr: str, program: str, mentions: list[str]) -> None:
    assert returncode not in (0, None), f"{program} accepted bad input:\n{stderr[-3000:]}"
    assert "Traceback" not in stderr, stderr[-3000:]
    logged = [line for line in stderr.splitlines() if "| ERROR" in line]
    if program == "tap-dap":
        # the SDK's own config validation ends with this line instead of `tap-dap: error:`
        finals = error_lines(stderr, program) or [
            line for line in logged if line.endswith("| Config validation failed")]
    else:  # the target logs its one error line through the SDK logger
        finals = [line for line in logged if line.split("| ", 3)[-1].startswith(f"{program}:")]
    assert len(finals) == 1, f"expected one error line:\n{stderr[-3000:]}"
    for text in mentions:
        assert any(text in line for line in [*finals, *logged]), (text, finals)


def run_singer(case: dict[str, Any], tmp_path: Path) -> None:
    data = b"".join(singer_line(item) for item in case["lines"])
    run = run_cli({"sqlalchemy_url": "sqlite:///dap.db"}, data, tmp_path)
    expect = case["expect"]
    table = "canvas__submissions"
    if expect["outcome"] == "error":
        assert_clean_error(run.returncode, run.stderr, "target-dap-sql", expect["mentions"])
        assert not dump(f"sqlite:///{tmp_path}/dap.db").get(table), "bad batch was committed"
        return
    assert run.returncode == 0, run.stderr[-3000:]
    with sqlite3.connect(tmp_path / "dap.db") as conn:
        conn.row_factory = sqlite3.Row
        rows = {str(r["id"]): dict(r) for r in conn.execute(f'SELECT * FROM "{table}"')}
    assert sorted(rows) == sorted(expect["rows"]), rows.keys()
    for key, columns in expect["rows"].items():
        assert {c: rows[key][c] for c in columns} == expand(columns)


def run_tap(case: dict[str, Any], emu: RunningEmulator, tmp_path: Path) -> None:
    config: dict[str, Any] = {"base_url": emu.base_url, "client_id": emu.client_id,
                              "client_secret": emu.client_secret, "poll_interval": 0.05}
    config.update(case.get("config", {}))
    config = {k: v for k, v in config.items() if v is not None}
    (tmp_path / "tap.json").write_text(case.get("config_text") or json.dumps(config))
    argv = [TAP, "--config", str(tmp_path / "tap.json")]
    if "state_text" in case:
        (tmp_path / "state.json").write_text(case["state_text"])
        argv += ["--state", str(tmp_path / "state.json")]
    done = subprocess.run(argv, capture_output=True, timeout=60, cwd=tmp_path)
    stderr = done.stderr.decode(errors="replace")
    expect = case["expect"]
    if expect["outcome"] == "ok":
        assert done.returncode == 0, stderr[-3000:]
        assert b'"type":"RECORD"' in done.stdout.replace(b" ", b"")
        return
    assert_clean_error(done.returncode, stderr, "tap-dap", expect["mentions"])


TRANSFORMS: dict[str, Callable[[list[bytes]], list[bytes]]] = {
    "truncate_line": lambda lines: [lines[0], lines[1][: len(lines[1]) // 2] + b"\n", *lines[2:]],
    "not_a_record": lambda lines: [lines[0], b'{"hello": "world"}\n', *lines[2:]],
    "invalid_utf8": lambda lines: [lines[0], lines[1].replace(b'"', b'"\xff\xfe', 1), *lines[2:]],
    "empty_lines": lambda lines: [b"\n", *[line.rstrip(b"\n") + b"\n\n" for line in lines]],
}


def run_object(case: dict[str, Any], emu: RunningEmulator, tmp_path: Path) -> None:
    proxy = FaultProxy(emu.base_url)
    try:
        proxy.add(Rule(r"^/objects/", object_lines(TRANSFORMS[case["transform"]])))
        workdir = Workdir(tmp_path / "job", emu, f"sqlite:///{tmp_path}/dap.db",
                          base_url=proxy.base_url)
        run = workdir.run()
        assert proxy.pending() == 0
    finally:
        proxy.stop()
    check_pipeline(case, workdir, run, [("canvas", "accounts")])


def check_pipeline(case: dict[str, Any], workdir: Workdir, run: Any,
                   tables: list[tuple[str, str]]) -> None:
    if case["expect"]["outcome"] == "truth":
        assert run.ok, run.explain()
        workdir.assert_equals_truth(tables)
        return
    expect = case["expect"]
    if expect.get("program", "tap-dap") == "tap-dap":
        assert_clean_error(run.tap_rc, run.tap_stderr, "tap-dap", expect["mentions"])
    else:
        assert_clean_error(run.target_rc, run.target_stderr, expect["program"], expect["mentions"])
    assert "Traceback" not in run.tap_stderr + run.target_stderr
    assert workdir.state().get("bookmarks", {}) == {}  # nothing claimed as synced


def run_fixture(case: dict[str, Any], emulator_factory: Callable[..., RunningEmulator],
                tmp_path: Path, db_url: str | None = None) -> None:
    data = tmp_path / "data"
    changes = [{**c, "value": expand(c["value"])} for c in case["changes"]]
    write_table(data, "canvas", "things", {"id": {"type": "integer", "format": "int64"}},
                case["value"], changes)
    emu = emulator_factory(data=data, rows=0)
    workdir = Workdir(tmp_path / "job", emu, db_url or f"sqlite:///{tmp_path}/dap.db")
    check_pipeline(case, workdir, workdir.run(), [("canvas", "things")])


@pytest.mark.parametrize("case", [
    pytest.param(c, id=c["id"], marks=[pytest.mark.xfail(strict=True, reason=c["xfail"])]
                 if "xfail" in c else []) for c in CORPUS])
def test_bad_input_case(case: dict[str, Any], tmp_path: Path,
                        emulator_factory: Callable[..., RunningEmulator]) -> None:
    kind = case["kind"]
    if kind == "singer":
        run_singer(case, tmp_path)
    elif kind in ("tap_config", "tap_state"):
        run_tap(case, emulator_factory(tables="accounts", rows=3), tmp_path)
    elif kind == "object_lines":
        run_object(case, emulator_factory(tables="accounts", rows=6, seed=2), tmp_path)
    elif kind == "fixture":
        run_fixture(case, emulator_factory, tmp_path)
    else:
        raise AssertionError(f"corpus case {case['id']}: unknown kind {kind!r}")


SERVER_CASES = [c for c in CORPUS if c["kind"] == "fixture"]


@pytest.mark.postgres
@pytest.mark.parametrize("case", [
    pytest.param(c, id=c["id"], marks=[pytest.mark.xfail(strict=True, reason=c["xfail_postgres"])]
                 if "xfail_postgres" in c else []) for c in SERVER_CASES])
def test_server_data_case_on_postgres(case: dict[str, Any], tmp_path: Path, pg_url: str,
                                      emulator_factory: Callable[..., RunningEmulator]) -> None:
    run_fixture({**case, "expect": case.get("expect_postgres", case["expect"])},
                emulator_factory, tmp_path, pg_url)


def test_corpus_is_large_and_covers_every_kind() -> None:
    assert len(CORPUS) >= 30
    assert {c["kind"] for c in CORPUS} == {"singer", "tap_config", "tap_state", "object_lines",
                                           "fixture"}
    assert len({c["id"] for c in CORPUS}) == len(CORPUS)
