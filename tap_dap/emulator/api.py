"""The DAP API endpoints (docs/dap-wire.md, Endpoints) with their exact response key sets."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs

from tap_dap.emulator.app import EmulatorApp
from tap_dap.emulator.errors import NotFoundError, ValidationError
from tap_dap.emulator.faults import Fault
from tap_dap.emulator.messages import Request, Response, json_response
from tap_dap.emulator.store import Table


def login(app: EmulatorApp, request: Request, fault: Fault | None) -> Response:
    form = parse_qs(request.body.decode("utf-8", "replace"))
    if form.get("grant_type") != ["client_credentials"]:
        raise ValidationError("grant_type=client_credentials is required")
    expired = fault is not None and fault.kind == "expired"
    return json_response(app.authority.login(request.headers.get("Authorization"), expired))


def _table(app: EmulatorApp, namespace: str, name: str) -> Table:
    tables = app.store.tables.get(namespace)
    if tables is None:
        raise NotFoundError("namespace", namespace)
    if name not in tables:
        raise NotFoundError("table", name)
    return tables[name]


def list_tables(app: EmulatorApp, namespace: str) -> Response:
    tables = app.store.tables.get(namespace)
    if tables is None:
        raise NotFoundError("namespace", namespace)
    return json_response({"tables": sorted(tables)})


def get_schema(app: EmulatorApp, namespace: str, name: str) -> Response:
    table = _table(app, namespace, name)
    with app.store.lock:
        current = table.schema.current
        return json_response({"schema": current.document, "version": current.version})


def query(app: EmulatorApp, namespace: str, name: str, request: Request,
          fault: Fault | None) -> Response:
    table = _table(app, namespace, name)
    body = request.json()
    job = app.jobs.create(table, body, fail=fault is not None and fault.kind == "failed")
    return _job_response(app, job.body(app.latency))


def get_job(app: EmulatorApp, job_id: str, fault: Fault | None) -> Response:
    job = app.jobs.get(job_id)
    if fault is not None and fault.kind == "failed":
        job.fail("The query job failed (injected fault).")
    elif fault is not None and fault.kind == "expired":
        raise NotFoundError("job", job_id)
    return _job_response(app, job.body(app.latency))


def _job_response(app: EmulatorApp, body: dict[str, Any]) -> Response:
    # The published API answers 202 while a job is in progress and 200 once it is terminal.
    return json_response(body, 202 if body["status"] in ("waiting", "running") else 200)


def object_urls(app: EmulatorApp, request: Request, fault: Fault | None) -> Response:
    body = request.json()
    if not isinstance(body, list) or not body or not all(
        isinstance(item, dict) and set(item) == {"id"} and isinstance(item["id"], str)
        for item in body
    ):
        raise ValidationError('body must be a non-empty JSON array of {"id": "<object id>"}')
    expired = fault is not None and fault.kind == "expired"
    base = f"http://{request.headers.get('Host', request.server_address)}"
    urls = {}
    for item in body:
        found = app.jobs.object(item["id"])
        urls[found.id] = {"url": base + app.signer.sign(f"/objects/{found.id}", expired)}
    return json_response({"urls": urls})
