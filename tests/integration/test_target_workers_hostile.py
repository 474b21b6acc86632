"""Hostile inputs for record workers (workers.py): every outcome — rows, meta rows, STATE lines,
the error line — must be what the target's own process gives (workers=1)."""

from __future__ import annotations

import copy
import uuid
from typing import Any

import psycopg
import pytest

from tests.integration.helpers import delete, submissions_schema_message, upsert
from tests.unit.target.dap_messages import META, activate, compact, run_in_process, state

STREAM = "canvas-things"


def _things_schema() -> dict[str, Any]:
    """A DAP stream with one column of each kind the PostgreSQL codec encodes."""
    value = {
        "d": {"type": "string", "format": "date"},
        "ts": {"type": "string", "format": "date-time"},
        "u": {"type": "string", "format": "uuid"},
        "dec": {"type": "number", "exclusiveMinimum": -1e18, "exclusiveMaximum": 1e18,
                "multipleOf": 1e-10},
        "f": {"type": "number", "format": "float64"},
        "r": {"type": "number", "format": "float32"},
        "i": {"type": "integer", "format": "int32"},
        "si": {"type": "integer", "format": "int16"},
        "arr": {"type": "array", "items": {"type": "integer", "format": "int64"}},
        "tags": {"type": "array", "items": {"type": "string"}},
        "j": {"type": "object", "properties": {"a": {"type": "string"}}},
        "anyj": {"type": "array", "items": {"type": "object"}},
        "b": {"type": "boolean"},
        "s": {"type": "string"},
        "e": {"type": "string", "enum": ["x", "y", "__dap_unspecified__"]},
        "v": {"type": "string", "maxLength": 5},
    }
    dap = {"type": "object", "properties": {
        "key": {"type": "object", "properties": {"id": {"type": "integer", "format": "int64"}},
                "required": ["id"]},
        "value": {"type": "object", "properties": value}, "meta": META}}
    props = {"id": {"type": "integer", "format": "int64"}}
    for name, node in value.items():
        node = copy.deepcopy(node)
        node["type"] = [node["type"], "null"]
        props[name] = node
    props["meta"] = META
    props["_sdc_deleted_at"] = {"type": ["string", "null"], "format": "date-time"}
    return {"type": "SCHEMA", "stream": STREAM, "key_properties": ["id"], "schema": {
        "type": "object", "properties": props, "required": ["id"],
        "x-dap": {"namespace": "canvas", "table": "things", "version": 1, "schema": dap}}}


VALUES: list[dict[str, Any]] = [
    {"d": "0001-01-01", "ts": "0001-01-01T00:00:00Z", "u": str(uuid.UUID(int=0)),
     "dec": "12345678.0123456789", "f": 1e308, "r": 3.4e38, "i": 2**31 - 1, "si": -2**15,
     "arr": [1, -2, 2**62], "tags": ["a", "", "ü\u2028", "\"q\\"], "j": {"a": "\u00e9\ud83d\ude00"},
     "anyj": [{"x": [1, {"y": None}]}], "b": True, "s": "", "e": "x", "v": "12345"},
    {"d": "9999-12-31", "ts": "9999-12-31T23:59:59.999999Z", "u": str(uuid.UUID(int=2**128 - 1)),
     "dec": -0.5, "f": -0.0, "r": 1e-45, "i": -2**31, "si": 2**15 - 1, "arr": [], "tags": [],
     "j": {}, "anyj": [], "b": False, "s": "\u65e5\u672c \U0001f600 \\u0041", "e": "y", "v": ""},
    {"d": None, "ts": "2024-02-29T12:00:00.5+05:30", "u": None, "dec": 0, "f": None, "r": None,
     "i": None, "si": None, "arr": None, "tags": None, "j": None, "anyj": None, "b": None,
     "s": None, "e": None, "v": None},
]


def _record(key: int, action: str = "U", **overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"id": key}
    if action == "U":
        body.update(VALUES[key % len(VALUES)])
        body.update(overrides)
    body["meta"] = {"action": action, "ts": "2024-01-10T00:00:00Z"}
    body["_sdc_deleted_at"] = "2024-01-10T00:00:00Z" if action == "D" else None
    return {"type": "RECORD", "stream": STREAM, "record": body}


def _state(ts: str) -> dict[str, Any]:
    return {"type": "STATE", "value": {"bookmarks": {
        STREAM: {"timestamp": ts, "schema_version": 1}}}}


def _outcome(server: Any, count: int, messages: list[Any], **settings: Any
             ) -> tuple[list[Any], str | None, dict[str, list[str]]]:
    """(STATE lines, error text, every table) of a run with ``count`` workers."""
    url = server.create_database(f"t_{uuid.uuid4().hex[:12]}")
    config = {"sqlalchemy_url": url, "workers": count, "batch_size_rows": 100, **settings}
    error = None
    states: list[Any] = []
    try:
        states = run_in_process(config, messages)
    except Exception as exc:  # noqa: BLE001 - compared below
        error = f"{type(exc).__name__}: {exc}"
    return states, error, _dump(url)


def _dump(url: str) -> dict[str, list[str]]:
    """Every table's rows as PostgreSQL's own text (NaN equals NaN, years BC load), sorted;
    not the meta table, whose `timestamp`s are each run's own, nor the time a soft delete
    without one of its own took from the clock (only whether a row is marked deleted)."""
    with psycopg.connect(url) as conn:
        tables = [t for (t,) in conn.execute(
            "SELECT quote_ident(table_schema) || '.' || quote_ident(table_name) "
            "FROM information_schema.tables WHERE table_schema NOT IN "
            "('pg_catalog', 'information_schema', 'instructure_dap') ORDER BY 1")]
        dump = {}
        for t in tables:
            names = [c.name for c in conn.execute(f"SELECT * FROM {t} LIMIT 0").description or []]
            quoted = {c: '"' + c.replace('"', '""') + '"' for c in names}
            values = ", ".join(f"(t.{quoted[c]} IS NOT NULL)" if c == "_sdc_deleted_at"
                               else f"t.{quoted[c]}" for c in names)
            dump[t] = sorted(r for (r,) in conn.execute(f"SELECT ROW({values})::text FROM {t} t"))
        return dump


def _same_as_one_process(server: Any, messages: list[Any], **settings: Any) -> Any:
    one = _outcome(server, 1, messages, **settings)
    two = _outcome(server, 2, messages, **settings)
    assert one[1] == two[1]
    assert one[0] == two[0]
    assert one[2] == two[2]
    return one


@pytest.mark.postgres
def test_every_column_kind_encodes_as_in_process(postgres_server: Any,
                                                 small_slices: list[int]) -> None:
    messages = [_things_schema(), *[_record(i) for i in range(1500)],
                _state("2024-01-01T00:00:00Z")]
    _, error, tables = _same_as_one_process(postgres_server, messages)
    assert error is None and len(tables["canvas.things"]) == 1500
    assert sum(small_slices) > 900


#: Values decoding refuses (the error names the line) ...
DECODE_ERRORS = [{"e": "z"}, {"v": "123456"}, {"i": 2**31}, {"si": 2**15}, {"u": "nope"},
                 {"d": "2024-02-30"}, {"ts": "2024-01-01T00:00:00"}, {"f": "1e999"}, {"b": 1},
                 {"dec": "1E-100000"}, {"dec": "1E+131072"}, {"dec": "9" * 140_000}]
#: ... and values it lets through (the server refuses or stores them): the outcome is the same.
OTHER_VALUES = [{"arr": [2**63]}, {"ts": "0001-01-01T00:00:00+01:00"}, {"dec": "Infinity"},
                {"dec": "NaN"}, {"dec": 1e30}, {"s": "x" * 10_000_000}, {"j": "not an object"},
                {"s": "\u2028\ud83d\ude00"}]


@pytest.mark.postgres
@pytest.mark.parametrize("bad", DECODE_ERRORS + OTHER_VALUES, ids=lambda bad: repr(bad)[:40])
def test_a_bad_value_amid_good_runs_fails_as_in_process(
        postgres_server: Any, small_slices: list[int], bad: dict[str, Any]) -> None:
    messages: list[Any] = [_things_schema()]
    for i in range(2000):
        messages.append(_record(i))
        if i % 150 == 149:  # runs of 150 lines, STATE between them
            messages.append(_state(f"2024-01-01T00:{i // 150:02d}:00Z"))
    # input line 1701: in a run in the middle of many the workers took
    messages[1700] = _record(messages[1700]["record"]["id"], **bad)
    _, error, _ = _same_as_one_process(postgres_server, messages)
    if bad in DECODE_ERRORS:
        assert error is not None and error.startswith(
            "InputError: line 1701, stream 'canvas-things': "), error
    assert len(small_slices) > 5


def _interleaved() -> list[Any]:
    """Two DAP streams whose runs alternate (one reaches the workers first), a SCHEMA change of
    one after its workers started, a snapshot of the other, keys updated, deleted and
    re-inserted across runs, STATE between runs."""
    subs = "canvas-submissions"
    messages: list[Any] = [_things_schema(), submissions_schema_message(1)]
    for block in range(24):
        for i in range(block * 25, block * 25 + 60):  # keys overlap the previous block's
            action = "D" if (i + block) % 7 == 0 else "U"
            messages.append(_record(i, action, s=f"b{block}"))
        for i in range(block * 3, block * 3 + 10):
            messages.append(delete(i) if (i + block) % 5 == 0 else upsert(i, grade=f"g{block}"))
        if block == 10:  # the submissions schema evolves while things' runs are in workers
            messages.append(submissions_schema_message(2))
        if block == 14:  # a snapshot of things, with runs in flight before it
            messages += [activate(STREAM, 7), *[_record(i, s="snap") for i in range(0, 900, 2)],
                         activate(STREAM, 7)]
        if block % 3 == 2:
            messages.append(state({STREAM: (f"2024-01-01T00:{block:02d}:00Z", 1),
                                   subs: (f"2024-01-02T00:{block:02d}:00Z",
                                          2 if block > 10 else 1)}))
    return messages


@pytest.mark.postgres
@pytest.mark.parametrize("settings", [
    {}, {"batch_max_seconds": 0},  # 0: every run added commits and emits STATE
    {"hard_delete": False, "validate_records": False},
    {"enum_type": "text", "default_target_schema": "elsewhere"},
], ids=repr)
def test_interleaved_streams_schema_change_and_snapshot(postgres_server: Any,
                                                        small_slices: list[int],
                                                        settings: dict[str, Any]) -> None:
    messages = _interleaved()
    one = _outcome(postgres_server, 1, messages, **settings)
    for count in (2, 3):
        assert _outcome(postgres_server, count, messages, **settings) == one
    assert one[1] is None and len(one[0]) >= (7 if settings.get("batch_max_seconds") == 0 else 1)
    assert len(small_slices) > 20


@pytest.mark.postgres
def test_input_cut_in_the_middle_of_a_line_with_runs_in_flight(postgres_server: Any,
                                                               small_slices: list[int]) -> None:
    """The tap died mid-line: the error names the last line, the runs before it are loaded
    exactly as without workers."""
    lines = [compact(m) for m in [_things_schema(), *[_record(i) for i in range(1400)]]]
    lines[-1] = lines[-1][:40]
    _, error, _ = _same_as_one_process(postgres_server, lines)
    assert error is not None and error.startswith("InputError: line 1401"), error
    assert len(small_slices) >= 2


@pytest.mark.postgres
def test_a_database_not_in_utf8_decodes_in_process(postgres_server: Any,
                                                   small_slices: list[int]) -> None:
    """The codec writes UTF-8 text: a LATIN1 database gets rows from the target's process."""
    messages = [_things_schema(), *[_record(i, s="caf\u00e9", tags=["\u00fc"], j={"a": "\u00e9"})
                                    for i in range(1, 900)], _state("2024-01-01T00:00:00Z")]
    outcomes = []
    for count in (1, 2):
        name = f"t_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(postgres_server.url, autocommit=True) as conn:
            conn.execute(f"CREATE DATABASE {name} ENCODING 'LATIN1' LC_COLLATE 'C' LC_CTYPE 'C' "
                         "TEMPLATE template0")
        url = postgres_server.url.rsplit("/", 1)[0] + "/" + name
        states = run_in_process({"sqlalchemy_url": url, "workers": count}, messages)
        outcomes.append((states, _dump(url)))
    assert outcomes[0] == outcomes[1]
    assert small_slices == []
    assert any("café" in row for row in outcomes[1][1]["canvas.things"])


@pytest.mark.postgres
@pytest.mark.parametrize("settings", [
    {"stream_maps": {STREAM: {"s": "None", "copy_of_id": "id"}}},
    {"stream_maps": {STREAM: {"__alias__": "canvas-renamed"}}},
    {"flattening_enabled": True, "flattening_max_depth": 1},
], ids=["map", "alias", "flattening"])
def test_mapped_streams_bypass_the_workers(postgres_server: Any, small_slices: list[int],
                                           settings: dict[str, Any]) -> None:
    """A mapped stream's records go through the SDK's mapper one by one: never to a worker,
    and the other streams still do; the database is the one process's."""
    messages = _interleaved()
    _, error, tables = _same_as_one_process(postgres_server, messages, **settings)
    if "flattening_enabled" in settings:  # no DAP layout then: a decimal as a string is refused
        assert error is not None and error.startswith("InputError: line 6, "), error
    else:
        assert error is None, error
        assert len(tables) == 2, tables.keys()
    # only canvas-submissions (unmapped, except under flattening) reached the workers
    assert sum(small_slices) < 2000
