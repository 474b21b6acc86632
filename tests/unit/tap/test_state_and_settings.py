"""State validation, settings cross-checks and table selection."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from tap_dap.client import format_timestamp
from tap_dap.discovery import select_tables
from tap_dap.errors import ConfigurationError, StateError
from tap_dap.settings import TapSettings
from tap_dap.state import parse_user_timestamp, read_config_files, validate_state

GOOD = {"bookmarks": {"canvas-accounts": {"timestamp": "2024-01-15T12:00:00.123456Z",
                                          "schema_version": 3}}}  # fmt: skip


def test_valid_state_and_meltano_wrapper_are_accepted() -> None:
    assert validate_state(GOOD) == GOOD
    assert validate_state({"singer_state": GOOD}) == GOOD
    assert validate_state({}) == {}


@pytest.mark.parametrize(
    ("state", "message"),
    [
        ({"bookmarks": "x"}, "state: 'bookmarks' must be an object keyed by stream name"),
        ({"bookmarks": {"canvas-a": 5}}, "state bookmark 'canvas-a': expected an object, got int"),
        ({"bookmarks": {"canvas-a": {"timestamp": 5}}}, "'timestamp' must be a string, got 5"),
        ({"bookmarks": {"canvas-a": {"timestamp": "2024-13-01T00:00:00Z"}}},
         "state bookmark 'canvas-a': 'timestamp': not an ISO 8601 timestamp: "
         "'2024-13-01T00:00:00Z'"),
        ({"bookmarks": {"canvas-a": {"timestamp": "2024-01-01T00:00:00Z",
                                     "schema_version": "3"}}},
         "'schema_version' must be an integer, got '3'"),
    ],
)  # fmt: skip
def test_malformed_state_raises_one_precise_error(state: dict, message: str) -> None:
    with pytest.raises(StateError) as info:
        validate_state(state)
    assert message in str(info.value)


def test_user_timestamps_follow_the_client_rules() -> None:
    parsed = parse_user_timestamp("2024-03-15T14:00:00.5+02:00", "x")
    assert parsed == datetime(2024, 3, 15, 12, 0, 0, 500000, tzinfo=UTC)
    assert format_timestamp(parsed) == "2024-03-15T12:00:00.500000Z"
    # no zone: UTC, as everywhere in DAP; whole seconds are written without a fraction
    plain = parse_user_timestamp("2024-01-01", "x")
    assert plain == datetime(2024, 1, 1, tzinfo=UTC)
    assert format_timestamp(plain) == "2024-01-01T00:00:00Z"


def _config(**extra: object) -> dict:
    return {"client_id": "id", "client_secret": "s3cret", **extra}


def test_settings_defaults_and_secret_free_repr() -> None:
    settings = TapSettings.from_config(_config())
    assert settings.namespaces == ("canvas",)
    assert settings.tables is None
    assert settings.max_jobs_per_minute is None
    assert settings.prefetch_buffer_bytes == 8 * 1024 * 1024
    assert "s3cret" not in repr(settings)


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ({"start_mode": "incremental"}, "setting start_mode=incremental needs a start_date"),
        ({"max_concurrent_jobs": 0}, "setting max_concurrent_jobs must be a positive number"),
        # a NaN (a JSON config file may carry one) compares false to every bound: a budget
        # that never ends, a deadline never passed
        ({"retry_budget_seconds": float("nan")},
         "setting retry_budget_seconds must be a positive number, got nan"),
        ({"request_timeout_seconds": float("nan")},
         "setting request_timeout_seconds must be a positive number, got nan"),
        ({"max_retry_after_seconds": float("-inf")},
         "setting max_retry_after_seconds must be a positive number, got -inf"),
        ({"start_date": "yesterday"},
         "setting start_date: not an ISO 8601 timestamp: 'yesterday'"),
    ],
)
def test_inconsistent_settings_are_rejected(extra: dict, message: str) -> None:
    with pytest.raises(ConfigurationError) as info:
        TapSettings.from_config(_config(**extra))
    assert message in str(info.value)


AVAILABLE = [("canvas", "accounts"), ("canvas", "account_users"), ("canvas", "users"),
             ("canvas_logs", "web_logs")]  # fmt: skip


def test_table_selection_by_name_glob_and_stream_name() -> None:
    assert select_tables(AVAILABLE, None) == AVAILABLE
    assert select_tables(AVAILABLE, ("users",)) == [("canvas", "users")]
    assert select_tables(AVAILABLE, ("account*", "canvas_logs-*")) == [
        ("canvas", "account_users"), ("canvas", "accounts"), ("canvas_logs", "web_logs"),
    ]  # fmt: skip
    assert select_tables(AVAILABLE, ("nomatch*", "users")) == [("canvas", "users")]


def test_a_plain_table_name_that_does_not_exist_is_an_error() -> None:
    with pytest.raises(ConfigurationError) as info:
        select_tables(AVAILABLE, ("users", "quizzes"))
    assert str(info.value) == (
        "setting tables: table 'quizzes' does not exist in namespace(s) canvas, canvas_logs"
    )


def test_config_files_merge_in_order_and_env_is_a_flag(tmp_path) -> None:
    first, second = tmp_path / "a.json", tmp_path / "b.json"
    first.write_text('{"client_id": "one", "namespaces": ["canvas"]}')
    second.write_text('{"client_id": "two"}')
    config, parse_env = read_config_files([str(first), "ENV", str(second)])
    assert config == {"client_id": "two", "namespaces": ["canvas"]}
    assert parse_env is True
    assert read_config_files([]) == ({}, False)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "config file {path}: cannot be read (No such file or directory)"),
        ('{"client_id": ', "config file {path}: not valid JSON (Expecting value: line 1 column 15"),
        ("[1]", "config file {path}: expected a JSON object, got list"),
        (b"\xff{}", "config file {path}: not valid JSON ('utf-8' codec can't decode byte 0xff"),
    ],
)
def test_unreadable_config_file_is_one_error_naming_it(
    tmp_path, content: str | bytes | None, message: str
) -> None:
    path = tmp_path / "tap.json"
    if isinstance(content, bytes):
        path.write_bytes(content)
    elif content is not None:
        path.write_text(content)
    with pytest.raises(ConfigurationError) as info:
        read_config_files([str(path)])
    assert str(info.value).startswith(message.format(path=path))


def test_tables_whose_stream_names_coincide_are_refused() -> None:
    from tap_dap.discovery import check_stream_names

    check_stream_names([("canvas", "users"), ("canvas_logs", "users")])  # distinct streams
    with pytest.raises(ConfigurationError) as raised:
        check_stream_names([("a-b", "c"), ("a", "b-c")])
    assert str(raised.value) == ("tables a-b.c and a.b-c would both be stream 'a-b-c'; select "
                                 "only one of them with the tables setting")
