"""The services a benchmark run needs: a DAP emulator per dataset, one PostgreSQL server and,
for the MariaDB scenarios, one MariaDB server."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.errors import RunFailed, SetupError

CLIENT_ID = "bench#client"
CLIENT_SECRET = "bench-secret"  # a local emulator credential, not a real secret


@dataclass(frozen=True)
class EmulatorSpec:
    """How to start one emulator: its dataset is fixed for its lifetime."""

    name: str
    tables: tuple[str, ...] | None  # canvas table names; None: every table of the dataset
    rows: int  # rows per table
    job_latency: float = 0.0
    seed: int = 7
    null_share: float | None = None  # None: the emulator's default


    def argv(self, executable: str) -> list[str]:
        argv = [executable, "serve", "--port", "0", "--dataset", "canvas",
                "--rows", str(self.rows), "--seed", str(self.seed),
                "--client-id", CLIENT_ID, "--client-secret", CLIENT_SECRET,
                "--job-latency", str(self.job_latency)]
        if self.null_share is not None:
            argv += ["--null-share", str(self.null_share)]
        if self.tables:
            # qualified: a bare name would also pick catalog.accounts, catalog.users ...
            argv += ["--tables", ",".join(f"canvas.{t}" for t in self.tables)]
        return argv


class Emulator:
    """A running ``dap-emulator serve`` process and its admin API."""

    def __init__(self, spec: EmulatorSpec, executable: str, log_dir: Path) -> None:
        self.spec = spec
        log_dir.mkdir(parents=True, exist_ok=True)
        self._stderr = (log_dir / f"emulator-{spec.name}.stderr").open("wb")
        self._proc = subprocess.Popen(
            spec.argv(executable), stdout=subprocess.PIPE, stderr=self._stderr,
            start_new_session=True,
        )
        assert self._proc.stdout is not None
        line = self._proc.stdout.readline().decode().strip()
        if not line.startswith("http"):
            self.stop()
            raise SetupError(
                f"emulator {spec.name} did not start (see {self._stderr.name}); got {line!r}"
            )
        self.base_url = line

    def _admin(self, method: str, path: str, body: Any = None) -> Any:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(
            f"{self.base_url}/_emulator/{path}", data=data, method=method,
            headers={"Content-Type": "application/json"},
        )
        try:
            with urllib.request.urlopen(request, timeout=600) as response:
                return json.loads(response.read())
        except OSError as exc:
            where = f"emulator {self.spec.name}: {method} /_emulator/{path}"
            raise RunFailed(f"{where}: {exc}") from None

    def tables(self) -> list[dict[str, Any]]:
        """``[{"namespace", "table", "version", "rows"}]`` with the live row counts."""
        return self._admin("GET", "tables")

    def live_rows(self) -> int:
        return sum(int(t["rows"]) for t in self.tables())

    def advance(self, namespace: str, table: str, updates: int, deletes: int) -> None:
        self._admin("POST", "advance", {"namespace": namespace, "table": table,
                                        "inserts": 0, "updates": updates, "deletes": deletes})

    def stop(self) -> None:
        if self._proc.poll() is None:
            os.killpg(self._proc.pid, signal.SIGTERM)
            try:
                self._proc.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(self._proc.pid, signal.SIGKILL)
                self._proc.wait()
        if self._proc.stdout is not None:
            self._proc.stdout.close()
        self._stderr.close()


class Postgres:
    """One throwaway PostgreSQL server (tests.servers) with database cloning for repeats."""

    def __init__(self) -> None:
        from tests.servers import PostgresServer, ServerUnavailable

        try:
            self._server = PostgresServer.start()
        except (ServerUnavailable, subprocess.CalledProcessError) as exc:
            raise SetupError(f"PostgreSQL did not start: {exc}") from None
        self._counter = 0

    @property
    def admin_url(self) -> str:
        return self._server.url

    def url(self, database: str) -> str:
        return self._server.url.rsplit("/", 1)[0] + "/" + database

    def fresh(self, prefix: str, template: str | None = None) -> str:
        """Create a new database (a copy of ``template`` if given); returns its name."""
        self._counter += 1
        name = f"{prefix}_{self._counter}"
        source = f' TEMPLATE "{template}"' if template else ""
        self._execute(f'CREATE DATABASE "{name}"{source}')
        return name

    def rename(self, database: str, new_name: str) -> None:
        self.drop(new_name)
        self._execute(f'ALTER DATABASE "{database}" RENAME TO "{new_name}"')

    def drop(self, database: str) -> None:
        self._execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')

    def exists(self, database: str) -> bool:
        import psycopg

        with psycopg.connect(self._server.url, autocommit=True) as conn:
            row = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (database,))
            return row.fetchone() is not None

    def count_rows(self, database: str, tables: list[str]) -> int:
        """Total rows of the given ``schema.table`` names; a missing table is a failed run."""
        import psycopg

        total = 0
        with psycopg.connect(self.url(database), autocommit=True) as conn:
            for qualified in tables:
                schema, _, table = qualified.rpartition(".")
                ident = f'"{schema}"."{table}"' if schema else f'"{table}"'
                try:
                    total += conn.execute(f"SELECT count(*) FROM {ident}").fetchone()[0]
                except psycopg.errors.UndefinedTable:
                    raise RunFailed(f"table {qualified} missing in database {database}") from None
        return total

    def version(self) -> str:
        import psycopg

        with psycopg.connect(self._server.url, autocommit=True) as conn:
            return conn.execute("SHOW server_version").fetchone()[0]

    def _execute(self, sql: str) -> None:
        import psycopg

        for attempt in range(20):
            try:
                with psycopg.connect(self._server.url, autocommit=True) as conn:
                    conn.execute(sql)
                return
            except psycopg.errors.ObjectInUse:
                # a just-finished client may still be disconnecting from the template
                if attempt == 19:
                    raise
                time.sleep(0.25)

    def stop(self) -> None:
        self._server.stop()


class MariaDB:
    """One throwaway MariaDB server (tests.servers) with the same interface as :class:`Postgres`.

    MariaDB has neither database templates nor RENAME DATABASE: a copy is made table by table
    (``CREATE TABLE … LIKE`` + ``INSERT … SELECT``, untimed setup) and a rename moves the tables.
    The buffer pool is sized for the bench's tables (the server default, 128 MB, would measure
    the disk instead of the tools); both tools get the same server.
    """

    BUFFER_POOL = "2G"

    def __init__(self) -> None:
        from tests.servers import MariaDBServer, ServerUnavailable

        try:
            self._server = MariaDBServer.start(
                extra_args=(f"--innodb-buffer-pool-size={self.BUFFER_POOL}",))
        except (ServerUnavailable, subprocess.CalledProcessError) as exc:
            raise SetupError(f"MariaDB did not start: {exc}") from None
        self._counter = 0

    def url(self, database: str) -> str:
        return self._server.url.rsplit("/", 1)[0] + "/" + database

    def fresh(self, prefix: str, template: str | None = None) -> str:
        self._counter += 1
        name = f"{prefix}_{self._counter}"
        self._server.create_database(name)
        if template is not None:
            for table in self._tables(template):
                source, copy = f"`{template}`.`{table}`", f"`{name}`.`{table}`"
                self._execute(f"CREATE TABLE {copy} LIKE {source}",
                              f"INSERT INTO {copy} SELECT * FROM {source}")
        return name

    def rename(self, database: str, new_name: str) -> None:
        self._server.create_database(new_name)  # dropped first if it exists
        self._execute(*(f"RENAME TABLE `{database}`.`{t}` TO `{new_name}`.`{t}`"
                        for t in self._tables(database)))
        self.drop(database)

    def drop(self, database: str) -> None:
        self._execute(f"DROP DATABASE IF EXISTS `{database}`")

    def exists(self, database: str) -> bool:
        return bool(self._query("SELECT 1 FROM information_schema.schemata WHERE schema_name = %s",
                                (database,)))

    def count_rows(self, database: str, tables: list[str]) -> int:
        """Total rows of the given table names; a missing table is a failed run."""
        present = set(self._tables(database))
        total = 0
        for table in tables:
            if table not in present:
                raise RunFailed(f"table {table} missing in database {database}")
            total += self._query(f"SELECT count(*) FROM `{database}`.`{table}`")[0][0]
        return total

    def version(self) -> str:
        return self._query("SELECT version()")[0][0]

    def _tables(self, database: str) -> list[str]:
        return [row[0] for row in self._query(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = %s "
            "AND table_type = 'BASE TABLE'", (database,))]

    def _connect(self) -> Any:
        import pymysql

        parts = urllib.parse.urlsplit(self._server.url)
        return pymysql.connect(host=parts.hostname, port=parts.port, user=parts.username,
                               autocommit=True)

    def _query(self, sql: str, args: tuple = ()) -> list[tuple]:
        conn = self._connect()
        try:
            with conn.cursor() as cur:
                cur.execute(sql, args)
                return list(cur.fetchall())
        finally:
            conn.close()

    def _execute(self, *statements: str) -> None:
        conn = self._connect()
        try:
            with conn.cursor() as cur:
                for sql in statements:
                    cur.execute(sql)
        finally:
            conn.close()

    def stop(self) -> None:
        self._server.stop()
