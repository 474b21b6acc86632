"""Error responses → exceptions, and which of them are retried (with what waits)."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest
import requests

from tap_dap.client import (
    AccountDisabledError,
    AccountNotOnboardedError,
    AccountUnderMaintenanceError,
    AuthenticationError,
    DAPClientError,
    GatewayTimeoutError,
    IncrementalQuery,
    Location,
    NetworkError,
    NotFoundError,
    OperationError,
    OutOfRangeError,
    ProcessingError,
    RequestTypeForbiddenError,
    RetryPolicy,
    ServerError,
    SnapshotQuery,
    SnapshotRequiredError,
    UnexpectedResponseError,
    ValidationError,
)
from tap_dap.client.errors import ConfigurationError
from tap_dap.client.retry import parse_retry_after
from tests.unit.client.conftest import BASE, calls_to

SCHEMA = f"{BASE}/dap/query/canvas/table/accounts/schema"
DATA = f"{BASE}/dap/query/canvas/table/accounts/data"
GOOD_SCHEMA = {"schema": {"type": "object"}, "version": 3}
SINCE = datetime(2024, 1, 1, tzinfo=UTC)


def error_body(**fields: object) -> dict[str, object]:
    return {"error": {"uuid": "e-7", "message": "boom", **fields}}


class TestMapping:
    @pytest.mark.parametrize(
        ("status", "fields", "cls"),
        [
            (
                400,
                {"type": "ValidationError", "location": {"line": 1, "column": 9, "character": 9}},
                ValidationError,
            ),
            (404, {"type": "NotFoundError", "id": "accounts", "kind": "table"}, NotFoundError),
            (400, {"type": "OutOfRangeError", "since": "2024-02-01T00:00:00Z"}, OutOfRangeError),
            (
                400,
                {"type": "SnapshotRequired", "since": "2024-02-01T00:00:00Z", "until": None},
                SnapshotRequiredError,
            ),
            (500, {"type": "ProcessingError"}, ProcessingError),
            (403, {"type": "AccountDisabled"}, AccountDisabledError),
            (500, {"type": "AccountNotOnboarded"}, AccountNotOnboardedError),
            (403, {"type": "AccountUnderMaintenance"}, AccountUnderMaintenanceError),
            (403, {"type": "RequestTypeForbidden"}, RequestTypeForbiddenError),
            # Fully-qualified server exception names map by their last component.
            (
                400,
                {
                    "type": "com.instructure.dap.SnapshotRequiredException",
                    "since": "2024-02-01T00:00:00Z",
                },
                SnapshotRequiredError,
            ),
            # Unknown type: the official key-shape rules apply.
            (404, {"type": "X", "id": "accounts", "kind": "table"}, NotFoundError),
            (400, {"type": "X", "since": "2024-02-01T00:00:00Z"}, OutOfRangeError),
            (409, {"type": "X"}, ProcessingError),
            (409, {"uuid": None, "detail": "no type"}, ServerError),
        ],
    )
    def test_error_class(self, api, session, status, fields, cls) -> None:
        api.get(SCHEMA, status_code=status, json=error_body(**fields))
        with pytest.raises(DAPClientError) as info:
            session.get_table_schema("canvas", "accounts")
        assert type(info.value) is cls
        assert info.value.status == status
        assert "HTTP" in str(info.value)

    def test_snapshot_required_is_raised_with_its_window(self, api, session) -> None:
        api.post(
            DATA,
            status_code=400,
            json=error_body(
                type="SnapshotRequiredError",
                since="2024-02-01T00:00:00Z",
                until="2024-03-01T00:00:00Z",
            ),
        )
        with pytest.raises(SnapshotRequiredError) as info:
            session.query_incremental("canvas", "accounts", IncrementalQuery("jsonl", since=SINCE))
        error = info.value
        assert isinstance(
            error, OutOfRangeError
        )  # code written for the official client still works
        assert (error.type, error.uuid, error.message) == ("SnapshotRequiredError", "e-7", "boom")
        assert error.since == datetime(2024, 2, 1, tzinfo=UTC)
        assert error.until == datetime(2024, 3, 1, tzinfo=UTC)
        assert str(error) == (
            "starting incremental query of canvas.accounts: boom [permitted since "
            "2024-02-01T00:00:00+00:00 until 2024-03-01T00:00:00+00:00, "
            "type=SnapshotRequiredError, uuid=e-7, HTTP 400]"
        )
        assert len(calls_to(api, DATA)) == 1

    def test_validation_and_not_found_details(self, api, session) -> None:
        api.get(
            SCHEMA,
            status_code=404,
            json=error_body(type="NotFoundError", id="acounts", kind="table"),
        )
        with pytest.raises(NotFoundError) as info:
            session.get_table_schema("canvas", "accounts")
        assert (info.value.id, info.value.kind) == ("acounts", "table")
        assert str(info.value) == (
            "getting schema of canvas.accounts: boom [table 'acounts' not found, "
            "type=NotFoundError, uuid=e-7, HTTP 404]"
        )
        api.post(
            DATA,
            status_code=400,
            json=error_body(
                type="ValidationError", location={"line": 1, "column": 12, "character": 12}
            ),
        )
        with pytest.raises(ValidationError) as vinfo:
            session.query_incremental("canvas", "accounts", IncrementalQuery("csv", since=SINCE))
        assert vinfo.value.location == Location(1, 12, 12)
        assert "at line 1 column 12 (character 12)" in str(vinfo.value)

    def test_html_504_is_a_gateway_timeout_with_status_and_excerpt(self, api, session) -> None:
        html = "<html><head><title>504 Gateway Time-out</title></head>\n<body>busy</body></html>"
        api.get(SCHEMA, status_code=504, text=html, headers={"Content-Type": "text/html"})
        with pytest.raises(GatewayTimeoutError) as info:
            session.get_table_schema("canvas", "accounts")
        assert str(info.value) == (
            "getting schema of canvas.accounts: HTTP 504: the API gateway timed out (non-JSON "
            "text/html response: '<html><head><title>504 Gateway Time-out</title></head> "
            "<body>busy</body></html>') (gave up after 4 attempts in "
            f"{info.value.elapsed:.1f} s)"
        )
        assert isinstance(info.value, ServerError)
        assert len(calls_to(api, SCHEMA)) == 4

    def test_long_non_json_body_is_excerpted(self, api, session) -> None:
        api.get(SCHEMA, status_code=502, text="x" * 5000, headers={"Content-Type": "text/plain"})
        with pytest.raises(ServerError) as info:
            session.get_table_schema("canvas", "accounts")
        text = str(info.value)
        assert "HTTP 502: non-JSON error response (text/plain): 'xxxx" in text
        assert len(text) < 400

    def test_processing_error_with_empty_message_is_retried_and_logged(
        self, api, session, caplog, clock
    ) -> None:
        caplog.set_level(logging.WARNING, logger="tap_dap.client")
        api.get(
            SCHEMA,
            [
                {
                    "status_code": 500,
                    "json": {"error": {"type": "ProcessingError", "uuid": "p-1", "message": ""}},
                },
                {"json": GOOD_SCHEMA},
            ],
        )
        assert session.get_table_schema("canvas", "accounts").version == 3
        (record,) = [r for r in caplog.records if "p-1" in r.getMessage()]
        assert record.getMessage().startswith(
            "getting schema of canvas.accounts: the server gave no message "
            "[type=ProcessingError, uuid=p-1, HTTP 500]; retrying in"
        )

    def test_processing_error_as_4xx_is_retried_a_few_times_only(
        self, api, session, caplog
    ) -> None:
        api.get(
            SCHEMA,
            status_code=400,
            json={"error": {"type": "ProcessingError", "uuid": "p-2", "message": ""}},
        )
        with pytest.raises(ProcessingError) as info:
            session.get_table_schema("canvas", "accounts")
        # processing_error_attempts (3) is below max_attempts (4).
        assert len(calls_to(api, SCHEMA)) == 3
        assert info.value.attempts == 3
        assert "[type=ProcessingError, uuid=p-2, HTTP 400] (gave up after 3 attempts" in str(
            info.value
        )
        errors = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
        assert errors == [str(info.value)]

    def test_processing_error_as_5xx_gets_the_whole_budget(self, api, session, clock) -> None:
        """DAP (and the emulator) type plain 500s ProcessingError: three of them are survived."""
        failing = {"status_code": 500,
                   "json": {"error": {"type": "ProcessingError", "uuid": "p-3", "message": "x"}}}
        api.get(SCHEMA, [failing, failing, failing, {"json": GOOD_SCHEMA}])
        assert session.get_table_schema("canvas", "accounts").version == 3
        assert len(calls_to(api, SCHEMA)) == 4

    def test_non_json_success_names_the_base_url(self, api, session) -> None:
        api.get(SCHEMA, text="<html>login page</html>", headers={"Content-Type": "text/html"})
        with pytest.raises(UnexpectedResponseError) as info:
            session.get_table_schema("canvas", "accounts")
        assert str(info.value) == (
            "getting schema of canvas.accounts: HTTP 200 response (text/html, "
            f"'<html>login page</html>') is not JSON; is the DAP base URL right ({BASE})?"
        )

    def test_missing_field_is_named(self, api, session) -> None:
        api.get(SCHEMA, json={"schema": {}})
        with pytest.raises(UnexpectedResponseError, match="lacks the field 'version'"):
            session.get_table_schema("canvas", "accounts")

    def test_hierarchy(self) -> None:
        for cls in (
            ValidationError,
            NotFoundError,
            OutOfRangeError,
            ProcessingError,
            AuthenticationError,
            AccountDisabledError,
        ):
            assert issubclass(cls, OperationError) and issubclass(cls, DAPClientError)
        for cls in (ServerError, GatewayTimeoutError, NetworkError):
            assert issubclass(cls, DAPClientError)


class TestRetries:
    def test_429_honours_retry_after_seconds(self, api, session, clock) -> None:
        api.get(
            SCHEMA,
            [
                {
                    "status_code": 429,
                    "headers": {"Retry-After": "7"},
                    "json": {
                        "error": {"type": "TooManyRequests", "uuid": "r", "message": "slow down"}
                    },
                },
                {"json": GOOD_SCHEMA},
            ],
        )
        assert session.get_table_schema("canvas", "accounts").version == 3
        assert clock.sleeps == [7.0]

    def test_a_per_call_policy_can_hand_429_back_at_once(self, api, session, clock,
                                                         caplog) -> None:
        throttled = {
            "status_code": 429,
            "headers": {"Retry-After": "42"},
            "json": {"error": {"type": "TooManyRequests", "uuid": "r-1", "message": "slow"}},
        }
        api.post(DATA, [throttled, throttled, {"json": {"id": "J1", "status": "waiting"}}])
        no_429 = RetryPolicy(retry_throttled=False)
        with pytest.raises(DAPClientError) as info:
            session.query_snapshot("canvas", "accounts", SnapshotQuery("jsonl"), retry=no_429)
        assert (info.value.status, info.value.retry_after) == (429, 42.0)
        assert clock.sleeps == [] and len(calls_to(api, DATA)) == 1
        # handed back to be scheduled around, not a failure: no ERROR line
        assert [r for r in caplog.records if r.levelno >= logging.ERROR] == []
        # the session's own policy (the default) still waits the 429 out
        job = session.query_snapshot("canvas", "accounts", SnapshotQuery("jsonl"))
        assert job.id == "J1" and clock.sleeps == [42.0] and len(calls_to(api, DATA)) == 3

    def test_429_honours_retry_after_http_date(self, api, session, clock) -> None:
        when = format_datetime(datetime.now(UTC) + timedelta(seconds=20), usegmt=True)
        api.get(
            SCHEMA,
            [
                {"status_code": 429, "headers": {"Retry-After": when}, "text": "Too Many Requests"},
                {"json": GOOD_SCHEMA},
            ],
        )
        session.get_table_schema("canvas", "accounts")
        (slept,) = clock.sleeps
        assert 17.0 <= slept <= 20.0

    def test_5xx_then_success_with_growing_jittered_waits(self, api, session, clock) -> None:
        api.get(
            SCHEMA,
            [
                {"status_code": 500, "text": "oops"},
                {"status_code": 502, "text": "bad gateway"},
                {"status_code": 503, "json": {"message": "unavailable"}},
                {"json": GOOD_SCHEMA},
            ],
        )
        assert session.get_table_schema("canvas", "accounts").version == 3
        first, second, third = clock.sleeps
        # base 1 s doubling, "equal jitter" (between half and all of the ceiling).
        assert 0.5 <= first <= 1.0 and 1.0 <= second <= 2.0 and 2.0 <= third <= 4.0

    def test_retries_exhausted_reports_attempts(self, api, session, clock) -> None:
        api.get(SCHEMA, status_code=503, json={"message": "unavailable"})
        with pytest.raises(ServerError) as info:
            session.get_table_schema("canvas", "accounts")
        assert len(calls_to(api, SCHEMA)) == 4
        assert len(clock.sleeps) == 3
        assert str(info.value).endswith(f"(gave up after 4 attempts in {info.value.elapsed:.1f} s)")
        assert "HTTP 503" in str(info.value)

    @pytest.mark.parametrize("status", [400, 401, 403, 404])
    def test_client_errors_are_not_retried(self, api, session, clock, status) -> None:
        api.get(
            SCHEMA,
            status_code=status,
            json={"error": {"type": "Whatever", "uuid": "c", "message": "no"}},
        )
        with pytest.raises(DAPClientError):
            session.get_table_schema("canvas", "accounts")
        expected = 2 if status == 401 else 1  # a 401 earns one re-login and one retry
        assert len(calls_to(api, SCHEMA)) == expected
        assert clock.sleeps == []

    def test_account_errors_are_not_retried_even_as_500(self, api, session) -> None:
        api.get(
            SCHEMA,
            status_code=500,
            json={"error": {"type": "AccountNotOnboarded", "uuid": "n", "message": "no"}},
        )
        with pytest.raises(AccountNotOnboardedError):
            session.get_table_schema("canvas", "accounts")
        assert len(calls_to(api, SCHEMA)) == 1

    def test_connection_reset_then_success(self, api, session, clock) -> None:
        api.get(
            SCHEMA,
            [
                {
                    "exc": requests.exceptions.ConnectionError(
                        "('Connection aborted.', ConnectionResetError(104, 'x'))"
                    )
                },
                {"exc": requests.exceptions.ReadTimeout("read timed out")},
                {"json": GOOD_SCHEMA},
            ],
        )
        assert session.get_table_schema("canvas", "accounts").version == 3
        assert len(clock.sleeps) == 2

    def test_total_retry_time_is_bounded(self, api, credentials, clock) -> None:
        from tap_dap.client import RetryPolicy
        from tests.unit.client.conftest import make_client

        api.get(SCHEMA, status_code=429, headers={"Retry-After": "100"}, text="busy")
        policy = RetryPolicy(max_attempts=50, max_time=250.0)
        with make_client(credentials, retry=policy) as session, pytest.raises(ServerError):
            session.get_table_schema("canvas", "accounts")
        assert sum(clock.sleeps) <= 250.0
        assert len(calls_to(api, SCHEMA)) == 4  # 0, 100, 200, 250 s

    def test_the_default_budget_is_time_not_attempts(self, api, credentials, clock,
                                                     caplog) -> None:
        from tap_dap.client import RetryPolicy
        from tests.unit.client.conftest import make_client

        api.get(SCHEMA, status_code=500, text="oops")
        caplog.set_level(logging.WARNING, logger="tap_dap.client")
        with make_client(credentials, retry=RetryPolicy()) as session, pytest.raises(
                ServerError) as raised:
            session.get_table_schema("canvas", "accounts")
        assert 0 < max(clock.sleeps) <= 30.0 and sum(clock.sleeps) == pytest.approx(300.0)
        attempts = len(calls_to(api, SCHEMA))
        assert attempts > 10  # five attempts used to end an outage of ~15 s
        assert str(raised.value).endswith(
            f"(gave up after {attempts} attempts in 300.0 s: the retry budget of 300 s is spent)")
        warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
        assert len(warnings) == attempts - 1
        assert warnings[1].endswith("(attempt 3, "
                                    f"{clock.sleeps[0]:.1f} s of the 300 s retry budget "
                                    "spent)"), warnings[1]

    def test_a_retry_after_above_the_cap_is_cut_and_said(self, api, credentials, clock,
                                                          caplog) -> None:
        from tap_dap.client import RetryPolicy
        from tests.unit.client.conftest import make_client

        api.get(SCHEMA, [{"status_code": 503, "headers": {"Retry-After": "3600"}, "text": "x"},
                         {"status_code": 503, "headers": {"Retry-After": "20"}, "text": "x"},
                         {"json": GOOD_SCHEMA}])
        caplog.set_level(logging.WARNING, logger="tap_dap.client")
        policy = RetryPolicy(max_time=1000.0, max_retry_after=600.0)
        with make_client(credentials, retry=policy) as session:
            assert session.get_table_schema("canvas", "accounts").version == 3
        assert clock.sleeps == [600.0, 20.0]
        first, second = [r.getMessage() for r in caplog.records]
        assert "; the server asked to wait 3600 s (Retry-After), more than " \
               "max_retry_after_seconds allows: waiting 600 s before retrying (attempt 2, " in first
        assert "; waiting 20 s as the server asked (Retry-After) before retrying (attempt 3, " \
               "600.0 s of the 1000 s retry budget spent)" in second
        assert all(r.levelno == logging.WARNING for r in caplog.records)

    def test_parse_retry_after(self) -> None:
        now = datetime(2024, 1, 1, tzinfo=UTC)
        assert parse_retry_after("12", now) == 12.0
        assert parse_retry_after("Mon, 01 Jan 2024 00:00:30 GMT", now) == 30.0
        assert parse_retry_after("Sun, 31 Dec 2023 23:00:00 GMT", now) == 0.0
        assert parse_retry_after("soon", now) is None
        assert parse_retry_after(None, now) is None


@pytest.mark.parametrize("limits", [
    {"max_time": float("nan")}, {"max_time": 0}, {"max_time": -1}, {"max_delay": float("nan")},
    {"max_retry_after": float("nan")}, {"base_delay": -1},
])
def test_a_retry_policy_refuses_limits_that_are_not_positive_numbers(limits: dict) -> None:
    with pytest.raises(ConfigurationError) as info:
        RetryPolicy(**limits)
    assert str(info.value) == "retry times must be positive"
