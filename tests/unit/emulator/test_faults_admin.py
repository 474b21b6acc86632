"""Fault injection (every kind), rate limits, request counters and the admin API."""

from __future__ import annotations

import http.client
import json
import time
from urllib.parse import urlsplit

import pytest
import requests

from tests.unit.emulator.conftest import Live

QUERY = "/dap/query/canvas/table/accounts/data"


def _fault(live: Live, **fault) -> None:
    response = live.post("/_emulator/faults", [fault])
    assert response.status_code == 200, response.text


@pytest.mark.parametrize("kind, status, error_type", [
    ("429", 429, "TooManyRequests"),
    ("500", 500, "ProcessingError"),
    ("503", 503, "ProcessingError"),
    ("504", 504, "ProcessingError"),
    ("401", 401, "AuthenticationError"),
    ("403", 403, "AccountDisabled"),
    ("processing", 400, "ProcessingError"),
])
def test_status_faults_hit_the_next_n_requests_then_stop(live: Live, kind, status,
                                                         error_type) -> None:
    _fault(live, endpoint="tables", kind=kind, count=2, retry_after=7)
    for _ in range(2):
        response = live.get("/dap/query/canvas/table")
        assert response.status_code == status
        error = response.json()["error"]
        assert error["type"] == error_type and set(error) == {"type", "uuid", "message"}
    if kind == "429":
        assert response.headers["Retry-After"] == "7"
    assert live.get("/dap/query/canvas/table").status_code == 200


def test_403_fault_can_name_the_account_error(live: Live) -> None:
    _fault(live, endpoint="schema", kind="403", error_type="AccountNotOnboarded")
    error = live.get("/dap/query/canvas/table/accounts/schema").json()["error"]
    assert error["type"] == "AccountNotOnboarded"


def test_reset_closes_the_connection_without_an_answer(live: Live) -> None:
    _fault(live, endpoint="job", kind="reset")
    job = live.query("canvas", "accounts", {"format": "jsonl"})
    with pytest.raises(requests.ConnectionError):
        requests.get(f"{live.url}/dap/job/{job['id']}",
                     headers={"Authorization": live.session.headers["Authorization"]})
    assert live.get(f"/dap/job/{job['id']}").json()["status"] == "complete"


def test_truncate_sends_half_the_object(live: Live) -> None:
    job = live.query("canvas", "submissions", {"format": "tsv"})
    item = job["objects"][0]
    url = live.post("/dap/object/url", [item]).json()["urls"][item["id"]]["url"]
    full = requests.get(url).content
    _fault(live, endpoint="object", kind="truncate")
    parts = urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname, parts.port)
    connection.request("GET", f"{parts.path}?{parts.query}")
    response = connection.getresponse()
    assert int(response.getheader("Content-Length")) == len(full)
    with pytest.raises(http.client.IncompleteRead) as info:
        response.read()
    assert info.value.partial == full[: len(full) // 2]


def test_drip_sends_the_headers_then_one_byte_per_interval(live: Live) -> None:
    job = live.query("canvas", "accounts", {"format": "jsonl"})
    item = job["objects"][0]
    url = live.post("/dap/object/url", [item]).json()["urls"][item["id"]]["url"]
    _fault(live, endpoint="object", kind="drip", interval=0.2)
    parts = urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=5)
    connection.request("GET", f"{parts.path}?{parts.query}")
    started = time.monotonic()
    response = connection.getresponse()
    assert response.status == 200 and time.monotonic() - started < 0.2
    head = requests.get(url).content[:3]
    assert [response.read1(64) for _ in range(3)] == [head[i:i + 1] for i in range(3)]
    assert time.monotonic() - started >= 0.4  # the 2nd and 3rd byte came 0.2 s apart
    connection.close()


def test_expired_faults(live: Live) -> None:
    job = live.query("canvas", "accounts", {"format": "jsonl"})
    item = job["objects"][0]
    _fault(live, endpoint="object_url", kind="expired")
    url = live.post("/dap/object/url", [item]).json()["urls"][item["id"]]["url"]
    assert requests.get(url).json()["error"]["message"] == "Request has expired"
    _fault(live, endpoint="object", kind="expired")
    fresh = live.post("/dap/object/url", [item]).json()["urls"][item["id"]]["url"]
    assert requests.get(fresh).status_code == 403
    assert requests.get(fresh).status_code == 200
    _fault(live, endpoint="job", kind="expired")
    assert live.get(f"/dap/job/{job['id']}").json()["error"]["kind"] == "job"
    _fault(live, endpoint="auth", kind="expired")
    token = live.login().json()
    assert token["expires_in"] == 0
    stale = requests.get(f"{live.url}/dap/query/canvas/table",
                         headers={"Authorization": f"Bearer {token['access_token']}"})
    assert stale.status_code == 401


def test_failed_faults_produce_failed_jobs(live: Live) -> None:
    _fault(live, endpoint="query", kind="failed")
    job = live.query("canvas", "accounts", {"format": "jsonl"})
    assert job["status"] == "failed"
    assert set(job) == {"id", "status", "expires_at", "error"}
    assert set(job["error"]) == {"type", "uuid", "message"}
    ok = live.query("canvas", "accounts", {"format": "jsonl"})
    _fault(live, endpoint="job", kind="failed")
    assert live.get(f"/dap/job/{ok['id']}").json()["status"] == "failed"


def test_bad_fault_specs_are_rejected(live: Live) -> None:
    for body, message in [
        ([{"endpoint": "nope", "kind": "500"}], "endpoint must be one of"),
        ([{"endpoint": "job", "kind": "418"}], "kind must be one of"),
        ([{"endpoint": "tables", "kind": "failed"}], "applies only to"),
        ([{"endpoint": "job", "kind": "500", "count": 0}], "count must be a positive"),
        ([{"endpoint": "job", "kind": "drip", "interval": 0}], "interval must be a number"),
        ([{"endpoint": "job", "kind": "drip", "interval": "1"}], "interval must be a number"),
        ({"endpoint": "job"}, "JSON array"),
    ]:
        response = live.post("/_emulator/faults", body)
        assert response.status_code == 400 and message in response.json()["error"]["message"]


def test_delete_faults_clears_the_queue(live: Live) -> None:
    _fault(live, endpoint="tables", kind="500", count=5)
    assert live.delete("/_emulator/faults").json() == {"cleared": 5}
    assert live.get("/dap/query/canvas/table").status_code == 200


def test_rate_limits_answer_429_with_retry_after_and_are_counted(live_factory) -> None:
    server = live_factory(tables=("accounts",), rate_limits={"tables": 2})
    server.authorize()
    statuses = [server.get("/dap/query/canvas/table").status_code for _ in range(3)]
    assert statuses == [200, 200, 429]
    throttled = server.get("/dap/query/canvas/table")
    assert 55 <= int(throttled.headers["Retry-After"]) <= 60
    counts = server.get("/_emulator/requests").json()
    assert counts["tables"] == {"total": 4, "throttled": 2, "faulted": 0}
    assert counts["auth"]["total"] == 1
    server.delete("/_emulator/requests")
    assert server.get("/_emulator/requests").json()["tables"]["total"] == 0


def test_admin_tables_advance_schema(live: Live) -> None:
    tables = live.get("/_emulator/tables").json()
    assert {"namespace": "canvas", "table": "accounts", "version": 1, "rows": 10} in tables
    live.post("/_emulator/advance", {"namespace": "canvas", "table": "accounts", "inserts": 3,
                                     "deletes": 2})
    rows = {(t["namespace"], t["table"]): t["rows"] for t in live.get("/_emulator/tables").json()}
    assert rows[("canvas", "accounts")] == 11 and rows[("catalog", "accounts")] == 10
    response = live.post("/_emulator/schema", {
        "namespace": "canvas", "table": "accounts",
        "add_column": {"name": "nickname", "schema": {"type": "string", "maxLength": 40}},
    })
    assert response.json()["version"] == 2
    schema = live.get("/dap/query/canvas/table/accounts/schema").json()
    assert schema["version"] == 2
    assert schema["schema"]["properties"]["value"]["properties"]["nickname"] == {
        "type": "string", "maxLength": 40}
    truth = [json.loads(x) for x in live.get("/_emulator/truth/canvas/accounts").text.split("\n")
             if x]
    assert all(row["value"]["nickname"] is None for row in truth), "old rows predate the column"
    live.post("/_emulator/advance", {"namespace": "canvas", "table": "accounts", "inserts": 40})
    truth = [json.loads(x) for x in live.get("/_emulator/truth/canvas/accounts").text.split("\n")
             if x]
    assert any(row["value"]["nickname"] is not None for row in truth)


def test_admin_add_enum_value_reaches_new_rows(live: Live) -> None:
    response = live.post("/_emulator/schema", {
        "namespace": "canvas", "table": "submissions",
        "add_enum_value": {"column": "workflow_state", "value": "archived"}})
    assert response.json()["version"] == 2
    enum = live.get("/dap/query/canvas/table/submissions/schema").json()["schema"][
        "properties"]["value"]["properties"]["workflow_state"]["enum"]
    assert enum[-1] == "archived"


@pytest.mark.parametrize("path, body, message", [
    ("advance", {"namespace": "canvas", "table": "nope"}, "unknown table canvas.nope"),
    ("advance", {"namespace": "canvas", "table": "accounts", "deletes": 99}, "10 live rows"),
    ("advance", {"namespace": "canvas", "table": "accounts", "inserts": -1}, "non-negative"),
    ("advance", {"table": "accounts"}, "missing field(s): namespace"),
    ("schema", {"namespace": "canvas", "table": "accounts",
                "add_column": {"name": "name", "schema": {"type": "string"}}}, "already exists"),
    ("schema", {"namespace": "canvas", "table": "accounts",
                "add_column": {"name": "x", "schema": {"type": "string", "pattern": "a"}}},
     "['pattern'] not accepted"),
    ("schema", {"namespace": "canvas", "table": "accounts",
                "add_enum_value": {"column": "name", "value": "x"}}, "not an enum column"),
])
def test_admin_bad_input_is_a_400_naming_the_problem(live: Live, path, body, message) -> None:
    response = live.post(f"/_emulator/{path}", body)
    assert response.status_code == 400
    assert message in response.json()["error"]["message"]
