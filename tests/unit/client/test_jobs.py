"""Tables, schemas, query bodies, job parsing and the job-waiting loop."""

from __future__ import annotations

import json
import logging
import os
from datetime import UTC, datetime, timedelta, timezone

import pytest

from tap_dap.client import (
    CompleteIncrementalJob,
    CompleteSnapshotJob,
    DAPClientError,
    FailedJob,
    Format,
    IncrementalQuery,
    JobFailedError,
    JobStatus,
    JobTimeoutError,
    Mode,
    Object,
    OutOfRangeError,
    ProcessingError,
    SnapshotQuery,
    SnapshotRequiredError,
    TableJob,
    UnexpectedResponseError,
)
from tap_dap.client.wire import format_timestamp, parse_job
from tests.unit.client.conftest import BASE, calls_to, make_client

DATA = f"{BASE}/dap/query/canvas/table/accounts/data"
JOB = f"{BASE}/dap/job/J1"
FUTURE = "2099-01-01T00:00:00Z"


def snapshot_done(job_id: str = "J1", expires_at: str = FUTURE) -> dict[str, object]:
    return {
        "id": job_id,
        "status": "complete",
        "expires_at": expires_at,
        "objects": [
            {"id": f"{job_id}/part-00000.jsonl.gz"},
            {"id": f"{job_id}/part-00001.jsonl.gz"},
        ],
        "schema_version": 4,
        "at": "2024-01-15T12:00:00.123456Z",
    }


class TestTablesAndSchemas:
    def test_get_tables_and_table_list(self, api, session) -> None:
        api.get(f"{BASE}/dap/query/canvas/table", json={"tables": ["accounts", "users"]})
        assert session.get_tables("canvas") == ["accounts", "users"]
        assert session.get_table_list("canvas", "all") == ["accounts", "users"]
        assert session.get_table_list("canvas", "a, b,,c") == ["a", "b", "c"]

    def test_get_table_schema(self, api, session) -> None:
        schema = {"type": "object", "properties": {"key": {"type": "object"}}}
        api.get(
            f"{BASE}/dap/query/canvas/table/accounts/schema",
            json={"schema": schema, "version": 7, "extra": "ignored"},
        )
        result = session.get_table_schema("canvas", "accounts")
        assert (result.schema, result.version) == (schema, 7)

    def test_download_table_schema(self, api, session, tmp_path) -> None:
        api.get(
            f"{BASE}/dap/query/canvas/table/accounts/schema",
            json={"schema": {"title": "é"}, "version": 2},
        )
        path = session.download_table_schema("canvas", "accounts", str(tmp_path / "out"))
        assert path == str(tmp_path / "out" / "accounts_schema_version_2.json")
        with open(path, encoding="utf-8") as saved:
            assert json.load(saved) == {"schema": {"title": "é"}, "version": 2}

    def test_names_are_quoted_into_the_path(self, api, session) -> None:
        api.get(f"{BASE}/dap/query/canvas/table/..%2Fjob/schema", json={"schema": {}, "version": 1})
        session.get_table_schema("canvas", "../job")
        assert calls_to(api, f"{BASE}/dap/query/canvas/table/..%2Fjob/schema")


class TestQueryBodies:
    def test_snapshot_body(self, api, session) -> None:
        api.post(DATA, json={"id": "J1", "status": "waiting"})
        job = session.query_snapshot(
            "canvas", "accounts", SnapshotQuery(Format.JSONL, Mode.CONDENSED)
        )
        assert calls_to(api, DATA)[0].body == b'{"format":"jsonl","mode":"condensed"}'
        assert calls_to(api, DATA)[0].headers["Content-Type"] == "application/json"
        assert (job.id, job.status, job.expires_at) == ("J1", JobStatus.Waiting, None)

    def test_incremental_body_field_order_and_timestamps(self, api, session) -> None:
        api.post(DATA, json={"id": "J1", "status": "running"})
        query = IncrementalQuery(
            format=Format.TSV,
            mode=None,
            since=datetime(2024, 1, 1, 2, 0, tzinfo=timezone(timedelta(hours=2))),
            until=datetime(2024, 2, 1, 0, 0, 0, 500000, tzinfo=UTC),
        )
        session.query_incremental("canvas", "accounts", query)
        assert calls_to(api, DATA)[0].body == (
            b'{"format":"tsv","since":"2024-01-01T00:00:00Z","until":"2024-02-01T00:00:00.500000Z"}'
        )

    def test_enum_aliases_and_string_values(self) -> None:
        assert Mode.condensed is Mode.CONDENSED and Format.Parquet is Format.PARQUET
        assert SnapshotQuery("tsv", "expanded") == SnapshotQuery(Format.TSV, Mode.EXPANDED)
        assert JobStatus.Complete.isTerminal() and not JobStatus.RUNNING.is_terminal()

    def test_incremental_query_needs_since(self) -> None:
        with pytest.raises(DAPClientError, match="needs `since`"):
            IncrementalQuery(Format.JSONL)

    def test_format_timestamp(self) -> None:
        assert format_timestamp(datetime(2024, 3, 15, 12, tzinfo=UTC)) == "2024-03-15T12:00:00Z"
        assert format_timestamp(datetime(2024, 3, 15, 12)) == "2024-03-15T12:00:00Z"


class TestJobParsing:
    def test_complete_snapshot_objects_carry_job_context(self) -> None:
        job = parse_job(snapshot_done(), "test")
        assert isinstance(job, CompleteSnapshotJob)
        assert job.at == datetime(2024, 1, 15, 12, 0, 0, 123456, tzinfo=UTC)
        first = job.objects[0]
        assert first == Object("J1/part-00000.jsonl.gz")
        assert (first.job_id, first.schema_version, first.at, first.expires_at) == (
            "J1",
            4,
            job.at,
            datetime(2099, 1, 1, tzinfo=UTC),
        )

    def test_complete_incremental(self) -> None:
        job = parse_job(
            {
                "id": "J2",
                "status": "complete",
                "objects": [{"id": "o"}],
                "schema_version": 2,
                "since": "2024-02-15T12:00:00Z",
                "until": "2024-03-15T12:00:00.5+00:00",
                "created_at": "tolerated",
                "expires_at": None,
            },
            "test",
        )
        assert isinstance(job, CompleteIncrementalJob)
        assert job.until == datetime(2024, 3, 15, 12, 0, 0, 500000, tzinfo=UTC)
        assert job.objects[0].since == datetime(2024, 2, 15, 12, tzinfo=UTC)
        assert job.objects[0].until == job.until

    def test_failed_job(self) -> None:
        job = parse_job(
            {
                "id": "J3",
                "status": "failed",
                "error": {"type": "ProcessingError", "uuid": "e-1", "message": "broke"},
            },
            "test",
        )
        assert isinstance(job, FailedJob)
        assert (job.error.type, job.error.uuid, job.error.message) == (
            "ProcessingError",
            "e-1",
            "broke",
        )

    def test_waiting_job_with_extra_keys(self) -> None:
        job = parse_job({"id": "J", "status": "waiting", "created_at": "x"}, "test")
        assert type(job) is TableJob and job.status is JobStatus.Waiting

    @pytest.mark.parametrize(
        ("payload", "message"),
        [
            ({"id": "J", "status": "paused"}, "unknown status 'paused'"),
            ({"status": "waiting"}, "lacks the field 'id'"),
            (
                {"id": "J", "status": "complete", "objects": [], "schema_version": 1},
                "neither `at` nor `since`/`until`",
            ),
            (
                {"id": "J", "status": "complete", "objects": [], "schema_version": 1, "at": "x"},
                "not an ISO 8601 timestamp",
            ),
        ],
    )
    def test_bad_payloads(self, payload, message) -> None:
        with pytest.raises(UnexpectedResponseError, match=message):
            parse_job(payload, "test")


class TestAwaitJob:
    def test_polls_with_growing_interval_until_complete(self, api, session, clock) -> None:
        api.post(DATA, json={"id": "J1", "status": "waiting"})
        api.get(
            JOB,
            [
                {"json": {"id": "J1", "status": "waiting"}},
                {"json": {"id": "J1", "status": "running"}},
                {"json": {"id": "J1", "status": "running"}},
                {"json": snapshot_done()},
            ],
        )
        job = session.await_job(
            session.query_snapshot("canvas", "accounts", SnapshotQuery("jsonl"))
        )
        assert isinstance(job, CompleteSnapshotJob) and len(job.objects) == 2
        assert clock.sleeps == [1.0, 1.5, 2.25, 3.375]

    def test_interval_is_capped(self, api, credentials, clock) -> None:
        api.get(
            JOB, [{"json": {"id": "J1", "status": "running"}}] * 5 + [{"json": snapshot_done()}]
        )
        with make_client(credentials, poll_interval=2, poll_interval_max=5) as session:
            session.await_job(TableJob("J1", JobStatus.Waiting))
        assert clock.sleeps == [2.0, 3.0, 4.5, 5.0, 5.0, 5.0]

    def test_overall_timeout(self, api, credentials, clock) -> None:
        api.get(JOB, json={"id": "J1", "status": "running"})
        with (
            make_client(credentials, job_timeout=60, poll_interval=10, poll_growth=1) as session,
            pytest.raises(JobTimeoutError) as info,
        ):
            session.await_job(TableJob("J1", JobStatus.Running))
        assert str(info.value) == "query job J1 still running after 60 s (job_timeout is 60 s)"
        assert info.value.job_id == "J1"
        assert sum(clock.sleeps) == 60

    def test_http_400_processing_error_while_polling_is_retried_and_logged(
        self, api, session, clock, caplog
    ) -> None:
        caplog.set_level(logging.WARNING, logger="tap_dap.client")
        empty = {"error": {"type": "ProcessingError", "uuid": "pe-1", "message": ""}}
        api.post(
            DATA, [{"status_code": 400, "json": empty}, {"json": {"id": "J1", "status": "waiting"}}]
        )
        api.get(JOB, [{"status_code": 400, "json": empty}, {"json": snapshot_done()}])
        job = session.await_job(
            session.query_snapshot("canvas", "accounts", SnapshotQuery("jsonl"))
        )
        assert isinstance(job, CompleteSnapshotJob) and job.id == "J1"
        assert len(calls_to(api, DATA)) == 2 and len(calls_to(api, JOB)) == 2
        logged = [r.getMessage() for r in caplog.records if "pe-1" in r.getMessage()]
        assert len(logged) == 2
        assert all("[type=ProcessingError, uuid=pe-1, HTTP 400]; retrying in" in m for m in logged)

    def test_http_400_processing_error_retries_are_bounded(self, api, session, clock) -> None:
        api.get(
            JOB,
            status_code=400,
            json={"error": {"type": "ProcessingError", "uuid": "pe-2", "message": ""}},
        )
        with pytest.raises(ProcessingError) as info:
            session.await_job(TableJob("J1", JobStatus.Running))
        assert len(calls_to(api, JOB)) == 3  # processing_error_attempts
        assert "[type=ProcessingError, uuid=pe-2, HTTP 400] (gave up after 3 attempts" in str(
            info.value
        )

    def test_failed_job_raises_with_its_error(self, api, session, caplog) -> None:
        api.get(
            JOB,
            json={
                "id": "J1",
                "status": "failed",
                "error": {"type": "ProcessingError", "uuid": "f-9", "message": ""},
            },
        )
        with pytest.raises(JobFailedError) as info:
            session.await_job(TableJob("J1", JobStatus.Running))
        error = info.value
        assert (error.job_id, error.type, error.uuid) == ("J1", "ProcessingError", "f-9")
        assert str(error) == (
            "query job J1 failed: the server gave no message [type=ProcessingError, uuid=f-9]"
        )
        # a WARNING: the caller may re-create the job and recover (tap-dap does)
        assert [r.getMessage() for r in caplog.records if r.levelname == "WARNING"] == [str(error)]
        assert [r for r in caplog.records if r.levelname == "ERROR"] == []

    @pytest.mark.parametrize(
        ("error_type", "cls"),
        [
            ("SnapshotRequired", SnapshotRequiredError),
            ("com.instructure.dap.OutOfRangeException", OutOfRangeError),
            ("ProcessingError", ProcessingError),
            ("", ProcessingError),
            ("SomethingNew", ProcessingError),
        ],
    )
    def test_failed_job_error_is_of_the_class_its_type_names(self, error_type, cls) -> None:
        job = parse_job(
            {"id": "J1", "status": "failed",
             "error": {"type": error_type, "uuid": "f-1", "message": "m"}},
            "getting job J1",
        )  # fmt: skip
        assert isinstance(job, FailedJob)
        assert type(job.error) is cls
        assert (job.error.type, job.error.uuid, job.error.message) == (error_type, "f-1", "m")

    def test_complete_job_about_to_expire_is_requeried(self, api, session, clock) -> None:
        soon = format_timestamp(datetime.now(UTC) + timedelta(seconds=10))
        api.post(DATA, [{"json": snapshot_done("J1", soon)}, {"json": snapshot_done("J2")}])
        job = session.execute_job("canvas", "accounts", SnapshotQuery("tsv", "condensed"))
        assert job.id == "J2"
        posts = calls_to(api, DATA)
        assert [p.body for p in posts] == [b'{"format":"tsv","mode":"condensed"}'] * 2
        (pause,) = clock.sleeps
        assert 10.0 <= pause <= 15.0  # waits until the cached job has expired

    def test_requery_is_bounded(self, api, session) -> None:
        soon = format_timestamp(datetime.now(UTC) + timedelta(seconds=5))
        api.post(DATA, json=snapshot_done("J1", soon))
        with pytest.raises(DAPClientError, match="kept returning job J1 about to expire"):
            session.execute_job("canvas", "accounts", SnapshotQuery("tsv"))
        assert len(calls_to(api, DATA)) == 4  # the first query and 3 re-queries

    def test_get_job_status_and_objects(self, api, session) -> None:
        api.get(JOB, json=snapshot_done())
        assert session.get_job_status("J1") is JobStatus.Complete
        assert [o.id for o in session.get_objects("J1")] == [
            "J1/part-00000.jsonl.gz",
            "J1/part-00001.jsonl.gz",
        ]
        api.get(f"{BASE}/dap/job/J9", json={"id": "J9", "status": "running"})
        with pytest.raises(DAPClientError, match="job J9 has no objects: its status is running"):
            session.get_objects("J9")

    def test_get_table_data(self, api, session) -> None:
        api.post(
            DATA,
            json={
                "id": "J5",
                "status": "complete",
                "objects": [{"id": "o1"}],
                "schema_version": 3,
                "since": "2024-01-01T00:00:00Z",
                "until": "2024-01-02T00:00:00Z",
            },
        )
        result = session.get_table_data(
            "canvas", "accounts", IncrementalQuery("jsonl", since=datetime(2024, 1, 1, tzinfo=UTC))
        )
        assert (result.job_id, result.schema_version, result.objects) == ("J5", 3, [Object("o1")])
        assert result.timestamp == datetime(2024, 1, 2, tzinfo=UTC)
        assert calls_to(api, f"{BASE}/dap/job/J5") == []  # no needless re-read of the job

    def test_download_table_data(self, api, session, tmp_path) -> None:
        from tests.unit.client.conftest import gz, signed_url

        api.post(DATA, json=snapshot_done("J7"))
        api.post(
            f"{BASE}/dap/object/url",
            json={
                "urls": {
                    "J7/part-00000.jsonl.gz": {"url": signed_url("part-00000.jsonl.gz")},
                    "J7/part-00001.jsonl.gz": {"url": signed_url("part-00001.jsonl.gz")},
                }
            },
        )
        api.get(signed_url("part-00000.jsonl.gz"), content=gz(b'{"a":1}\n'))
        api.get(signed_url("part-00001.jsonl.gz"), content=gz(b'{"a":2}\n'))
        result = session.download_table_data(
            "canvas", "accounts", SnapshotQuery("jsonl"), str(tmp_path), decompress=True
        )
        job_dir = tmp_path / "job_J7"
        assert result.downloaded_files == [
            str(job_dir / "part-00000.jsonl"),
            str(job_dir / "part-00001.jsonl"),
        ]
        assert result.timestamp == datetime(2024, 1, 15, 12, 0, 0, 123456, tzinfo=UTC)
        assert sorted(os.listdir(job_dir)) == ["part-00000.jsonl", "part-00001.jsonl"]
        assert (job_dir / "part-00001.jsonl").read_bytes() == b'{"a":2}\n'
