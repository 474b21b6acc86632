"""The DAP wire protocol: exact key sets, statuses and error bodies (docs/dap-wire.md)."""

from __future__ import annotations

import base64
import csv
import gzip
import io
import time
from urllib.parse import urlsplit

import orjson
import requests

from tests.unit.emulator.conftest import Live

ERROR_KEYS = {"type", "uuid", "message"}


def _claims(token: str) -> dict:
    body = token.split(".")[1]
    return orjson.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))


def test_login_returns_exactly_the_token_keys_and_a_jwt_with_exp(live_factory) -> None:
    server = live_factory(token_ttl=120)
    response = server.login()
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "application/json"
    body = response.json()
    assert set(body) == {"access_token", "expires_in", "scope", "token_type"}
    assert body["expires_in"] == 120 and body["token_type"] == "Bearer"
    assert abs(_claims(body["access_token"])["exp"] - (time.time() + 120)) < 5


def test_wrong_credentials_are_401_authentication_error(live_factory) -> None:
    server = live_factory()
    response = server.login(secret="nope")
    assert response.status_code == 401
    error = response.json()["error"]
    assert set(error) == ERROR_KEYS and error["type"] == "AuthenticationError"
    assert "nope" not in response.text


def test_api_calls_need_a_valid_unexpired_bearer_token(live_factory) -> None:
    server = live_factory(token_ttl=1)
    assert server.get("/dap/query/canvas/table").status_code == 401
    server.session.headers["Authorization"] = "Bearer a.b.c"
    assert server.get("/dap/query/canvas/table").status_code == 401
    server.authorize()
    assert server.get("/dap/query/canvas/table").status_code == 200
    time.sleep(2.1)
    expired = server.get("/dap/query/canvas/table")
    assert expired.status_code == 401 and expired.json()["error"]["message"] == "token expired"


def test_table_list_and_schema_have_exact_keys(live: Live) -> None:
    assert live.get("/dap/query/canvas/table").json() == {"tables": ["accounts", "submissions"]}
    body = live.get("/dap/query/canvas/table/submissions/schema").json()
    assert set(body) == {"schema", "version"} and body["version"] == 1
    schema = body["schema"]
    assert schema["$schema"].startswith("http://json-schema.org/")
    assert set(schema["properties"]) == {"key", "value", "meta"}
    value = schema["properties"]["value"]
    assert value["properties"]["workflow_state"]["enum"][0] == "__dap_unspecified__"
    assert "graded" in value["properties"]["workflow_state"]["enum"]
    assert value["properties"]["points_deducted"] == {
        "type": "number", "exclusiveMinimum": -10000, "exclusiveMaximum": 10000, "multipleOf": 0.01,
    }
    assert value["properties"]["anonymous_id"] == {"type": "string", "maxLength": 5}
    assert {"course_id", "user_id", "workflow_state", "assignment_id", "cached_quiz_lti",
            "redo_request"} == set(value["required"])
    assert len(value["properties"]) + 1 >= 40


def test_snapshot_job_flow_and_object_download(live: Live) -> None:
    job = live.query("canvas", "accounts", {"format": "tsv", "mode": "condensed"})
    assert set(job) == {"id", "status", "expires_at", "objects", "schema_version", "at"}
    assert job["status"] == "complete" and job["at"].endswith("Z")
    assert live.get(f"/dap/job/{job['id']}").json() == job
    item = job["objects"][0]
    assert set(item) == {"id"}
    urls = live.post("/dap/object/url", [item]).json()
    assert set(urls) == {"urls"} and set(urls["urls"]) == {item["id"]}
    url = urls["urls"][item["id"]]["url"]
    assert urlsplit(url).path.endswith(".tsv.gz")
    response = requests.get(url)  # no Authorization header: pre-signed
    assert response.status_code == 200
    assert "Content-Encoding" not in response.headers
    assert response.headers["Content-Type"] == "application/octet-stream"
    lines = gzip.decompress(response.content).decode().splitlines()
    assert lines[0].split("\t")[:3] == ["meta.ts", "key.id", "value.name"]
    assert len(lines) == 1 + 10


def test_objects_are_split_by_rows_per_object_with_unique_basenames(live_factory) -> None:
    server = live_factory(rows=10, rows_per_object=3, tables=("accounts",))
    server.authorize()
    job = server.query("canvas", "accounts", {"format": "csv"})
    names = [item["id"].rsplit("/", 1)[1] for item in job["objects"]]
    assert len(set(names)) == len(names) == 4
    counts = [len(list(csv.reader(io.StringIO(data.decode())))) - 1
              for data in server.download(job)]
    assert counts == [3, 3, 3, 1]


def test_incremental_job_has_since_and_until(live: Live) -> None:
    at = live.query("canvas", "accounts", {"format": "jsonl"})["at"]
    job = live.query("canvas", "accounts", {"format": "jsonl", "since": at})
    assert set(job) == {"id", "status", "expires_at", "objects", "schema_version", "since",
                        "until"}
    assert job["since"] == at and job["until"] > at


def test_job_latency_moves_waiting_running_complete(live_factory) -> None:
    server = live_factory(latency=0.6, tables=("accounts",))
    server.authorize()
    response = server.post("/dap/query/canvas/table/accounts/data", {"format": "jsonl"})
    assert response.status_code == 202
    job = response.json()
    assert set(job) == {"id", "status", "expires_at"} and job["status"] == "waiting"
    time.sleep(0.35)
    running = server.get(f"/dap/job/{job['id']}")
    assert (running.status_code, running.json()["status"]) == (202, "running")
    time.sleep(0.4)
    done = server.get(f"/dap/job/{job['id']}")
    assert (done.status_code, done.json()["status"]) == (200, "complete")


def _error(response: requests.Response, status: int) -> dict:
    assert response.status_code == status, response.text
    assert response.headers["Content-Type"] == "application/json"
    return response.json()["error"]


def test_not_found_errors_carry_id_and_kind(live: Live) -> None:
    error = _error(live.get("/dap/query/nope/table"), 404)
    assert set(error) == ERROR_KEYS | {"id", "kind"}
    assert (error["id"], error["kind"]) == ("nope", "namespace")
    error = _error(live.get("/dap/query/canvas/table/nope/schema"), 404)
    assert (error["id"], error["kind"]) == ("nope", "table")
    error = _error(live.get("/dap/job/0000"), 404)
    assert (error["id"], error["kind"]) == ("0000", "job")
    error = _error(live.post("/dap/object/url", [{"id": "x/y.jsonl.gz"}]), 404)
    assert (error["id"], error["kind"]) == ("x/y.jsonl.gz", "object")


def test_bad_query_bodies_are_400_validation_errors(live: Live) -> None:
    path = "/dap/query/canvas/table/accounts/data"
    cases = [
        ({"format": "xml"}, "'format' must be one of"),
        ({"format": "jsonl", "mode": "flat"}, "'mode' must be"),
        ({"format": "jsonl", "since": "2024-01-01T00:00:00"}, "time zone"),
        ({"format": "jsonl", "since": "2024-02-01T00:00:00Z", "until": "2024-01-01T00:00:00Z"},
         "'since' is after 'until'"),
        ({"format": "jsonl", "scope": "x"}, "unknown query field"),
        ([], "must be a JSON object"),
    ]
    for body, message in cases:
        error = _error(live.post(path, body), 400)
        assert set(error) == ERROR_KEYS | {"location"}, body
        assert message in error["message"], (body, error)
    malformed = live.session.post(live.url + path, data=b'{"format": ', headers={
        "Content-Type": "application/json"})
    error = _error(malformed, 400)
    assert error["location"] == {"line": 1, "column": 12, "character": 12}


def test_future_since_is_out_of_range(live: Live) -> None:
    error = _error(live.post("/dap/query/canvas/table/accounts/data",
                             {"format": "jsonl", "since": "2999-01-01T00:00:00Z"}), 400)
    assert error["type"] == "OutOfRange" and set(error) == ERROR_KEYS | {"since", "until"}


def test_presigned_url_rejects_tampering_and_expiry(live_factory) -> None:
    server = live_factory(url_ttl=1, tables=("accounts",))
    server.authorize()
    job = server.query("canvas", "accounts", {"format": "jsonl"})
    item = job["objects"][0]
    url = server.post("/dap/object/url", [item]).json()["urls"][item["id"]]["url"]
    tampered = url.replace("X-Amz-Signature=", "X-Amz-Signature=0")
    assert _error(requests.get(tampered), 403)["type"] == "AccessDenied"
    time.sleep(2.1)
    error = _error(requests.get(url), 403)
    assert error["message"] == "Request has expired"


def test_unknown_route_is_json_404(live: Live) -> None:
    error = _error(live.get("/nothing/here"), 404)
    assert error["kind"] == "resource"
