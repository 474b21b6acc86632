"""Issue 9.4: with sentinel secrets, no log, state, catalog, exception text or row leaks them.

Leaks looked for: the client secret, the DB password, any JWT (the emulator's tokens start with
`eyJ`; one is fetched here to prove the pattern matches them), and every pre-signed URL signature /
query string the proxy saw the tap use.
"""

from __future__ import annotations

import base64
import json
import re
import subprocess
import urllib.request
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.emulator_fixture import RunningEmulator
from tests.reliability.outcomes import JWT, assert_recovered, dump
from tests.reliability.pipeline import TAP, Workdir
from tests.reliability.proxy import FaultProxy
from tests.unit.target.dap_messages import (
    record,
    run_cli,
    singer_schema,
    submission,
    submissions_schema,
)

CLIENT_SECRET = "Sentinel-Client-Secret-7f3a9c"
DB_PASSWORD = "Sentinel-Db-Password-5e1b"
TABLES = [("canvas", "accounts"), ("canvas", "users")]
SIGNATURE = re.compile(r"X-Amz-Signature=([0-9a-f]+)")


def fetch_jwt(emu: RunningEmulator) -> str:
    credentials = base64.b64encode(f"{emu.client_id}:{emu.client_secret}".encode()).decode()
    request = urllib.request.Request(
        f"{emu.base_url}/ids/auth/login", data=b"grant_type=client_credentials", method="POST",
        headers={"Authorization": f"Basic {credentials}",
                 "Content-Type": "application/x-www-form-urlencoded"})
    with urllib.request.urlopen(request, timeout=30) as response:
        return str(json.loads(response.read())["access_token"])


def leaks(text: bytes, secrets: list[bytes]) -> list[str]:
    found = [s.decode() for s in secrets if s in text]
    found += [m.group(0).decode()[:16] + "…" for m in JWT.finditer(text)]
    return found


def artifacts(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*"))
            if p.is_file() and p.suffix != ".db"}


@pytest.mark.postgres
def test_no_secret_reaches_logs_state_catalog_errors_or_rows(
        emulator_factory: Callable[..., RunningEmulator], tmp_path: Path, pg_url: str) -> None:
    emu = emulator_factory(tables="accounts,users", rows=20, rows_per_object=8, seed=4,
                           client_secret=CLIENT_SECRET, job_latency=0.2, token_ttl=1)
    jwt = fetch_jwt(emu)
    assert JWT.match(jwt.encode()), "the JWT pattern must match the emulator's tokens"
    # trust auth ignores the password, but it is in the URL the target is given
    db_url = pg_url.replace("postgres@", f"postgres:{DB_PASSWORD}@", 1)
    proxy = FaultProxy(emu.base_url)
    try:
        workdir = Workdir(tmp_path / "job", emu, db_url, base_url=proxy.base_url)
        # error paths too: expired URLs, 401s, server errors log exception texts
        emu.faults([{"endpoint": "object", "kind": "expired", "count": 2},
                    {"endpoint": "job", "kind": "401", "count": 1},
                    {"endpoint": "object_url", "kind": "500", "count": 1, "retry_after": 0}])
        assert_recovered(workdir, workdir.run(extra_env={"LOGLEVEL": "DEBUG"}), TABLES)
        emu.advance("canvas", "users", inserts=3, deletes=1)
        emu.faults([{"endpoint": "query", "kind": "403", "count": 100}])
        failed = workdir.run()
        assert failed.tap_rc != 0
        emu.clear_faults()
        assert_recovered(workdir, workdir.run(), TABLES)
        catalog = subprocess.run([TAP, "--config", str(workdir.path / "tap.json"), "--discover"],
                                 capture_output=True, timeout=60, cwd=workdir.path)
        assert catalog.returncode == 0
        (workdir.path / "catalog.json").write_bytes(catalog.stdout + catalog.stderr)
    finally:
        proxy.stop()
    signatures = {m.group(1).encode() for _, path in proxy.seen
                  if (m := SIGNATURE.search(path))}
    assert signatures, "the tap downloaded no pre-signed URL through the proxy"
    secrets = [CLIENT_SECRET.encode(), DB_PASSWORD.encode(), jwt.encode(), *signatures]

    found = {name: leaks(data, secrets) for name, data in artifacts(workdir.path).items()
             if name != "tap.json" and name != "target.json"}
    assert {name: hits for name, hits in found.items() if hits} == {}
    rows = repr(dump(pg_url)).encode()
    assert leaks(rows, secrets) == []


def test_database_password_never_printed_on_connection_errors(tmp_path: Path) -> None:
    url = f"postgresql://dap:{DB_PASSWORD}@127.0.0.1:1/replica"
    messages = [singer_schema("canvas", "submissions", 1, submissions_schema()),
                record("canvas-submissions", {"id": 1}, submission(1))]
    run = run_cli({"sqlalchemy_url": url}, messages, tmp_path)
    assert run.returncode != 0
    assert "cannot connect to PostgreSQL at 127.0.0.1:1/replica" in run.stderr
    assert DB_PASSWORD not in run.stderr


def test_wrong_secret_error_names_the_client_not_the_secret(
        emulator_factory: Callable[..., RunningEmulator], tmp_path: Path) -> None:
    emu = emulator_factory(tables="accounts", rows=2)
    config = {"base_url": emu.base_url, "client_id": emu.client_id,
              "client_secret": CLIENT_SECRET}
    (tmp_path / "tap.json").write_text(json.dumps(config))
    done = subprocess.run([TAP, "--config", str(tmp_path / "tap.json")], capture_output=True,
                          timeout=60, cwd=tmp_path)
    assert done.returncode != 0
    assert emu.client_id.encode() in done.stderr
    assert leaks(done.stderr + done.stdout, [CLIENT_SECRET.encode()]) == []
