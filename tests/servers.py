"""Throwaway database servers for the test suite and the benchmarks.

Each server runs on a free loopback port with its data directory under /tmp and is torn down by
`stop()`. PostgreSQL refuses to run as root, so when we are root the server runs as the `postgres`
user. Set TEST_PG_URL / TEST_MARIADB_URL to use servers you already have instead.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

PG_BIN_DIRS = sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True)


class ServerUnavailable(RuntimeError):
    """The server binaries are missing or the server did not come up."""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait_for_port(port: int, timeout: float, proc: subprocess.Popen | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise ServerUnavailable(f"server exited with code {proc.returncode}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.5):
            return
        time.sleep(0.1)
    raise ServerUnavailable(f"nothing listens on 127.0.0.1:{port} after {timeout:.0f} s")


def _as_user(user: str | None, argv: list[str]) -> list[str]:
    return ["runuser", "-u", user, "--", *argv] if user else argv


@dataclass
class PostgresServer:
    url: str = ""
    _datadir: Path | None = None
    _user: str | None = None
    _bin: Path | None = None
    _log: Path | None = None

    @classmethod
    def start(cls) -> PostgresServer:
        pg_bin = next((d for d in PG_BIN_DIRS if (d / "postgres").exists()), None)
        if pg_bin is None:
            raise ServerUnavailable("no PostgreSQL server binaries under /usr/lib/postgresql")
        user = "postgres" if os.geteuid() == 0 else None
        datadir = Path(tempfile.mkdtemp(prefix="tapdap-pg-"))
        if user:
            shutil.chown(datadir, user)
        port = free_port()
        log = datadir / "server.log"
        subprocess.run(
            _as_user(user, [str(pg_bin / "initdb"), "-D", str(datadir / "data"), "-U", "postgres",
                            "-A", "trust", "-E", "UTF8", "--locale=C.UTF-8"]),
            check=True, capture_output=True,
        )
        subprocess.run(
            _as_user(user, [str(pg_bin / "pg_ctl"), "-D", str(datadir / "data"), "-l", str(log),
                            "-o", f"-p {port} -k {datadir} -c listen_addresses=127.0.0.1 "
                                  "-c fsync=off -c synchronous_commit=off -c full_page_writes=off "
                                  "-c max_connections=200",
                            "-w", "-t", "60", "start"]),
            check=True, capture_output=True,
        )
        _wait_for_port(port, 30)
        server = cls(f"postgresql://postgres@127.0.0.1:{port}/postgres", datadir, user, pg_bin, log)
        return server

    def create_database(self, name: str) -> str:
        """Create a fresh database and return its URL."""
        import psycopg

        with psycopg.connect(self.url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url.rsplit("/", 1)[0] + "/" + name

    def stop(self) -> None:
        if self._datadir is None:
            return
        subprocess.run(
            _as_user(self._user, [str(self._bin / "pg_ctl"), "-D", str(self._datadir / "data"),
                                  "-m", "immediate", "-w", "stop"]),
            capture_output=True,
        )
        shutil.rmtree(self._datadir, ignore_errors=True)
        self._datadir = None


@dataclass
class MariaDBServer:
    url: str = ""
    _datadir: Path | None = None
    _proc: subprocess.Popen | None = field(default=None, repr=False)

    @classmethod
    def start(cls, extra_args: tuple[str, ...] = ()) -> MariaDBServer:
        mysqld = shutil.which("mariadbd") or shutil.which("mysqld") or "/usr/sbin/mariadbd"
        install_db = shutil.which("mariadb-install-db") or shutil.which("mysql_install_db")
        if not Path(mysqld).exists() or install_db is None:
            raise ServerUnavailable("MariaDB server not installed (apt-get install mariadb-server)")
        datadir = Path(tempfile.mkdtemp(prefix="tapdap-mariadb-"))
        port = free_port()
        user_args = ["--user=root"] if os.geteuid() == 0 else []
        subprocess.run(
            [install_db, "--no-defaults", f"--datadir={datadir / 'data'}",
             "--auth-root-authentication-method=normal", "--skip-test-db", *user_args],
            check=True, capture_output=True,
        )
        proc = subprocess.Popen(
            [mysqld, "--no-defaults", f"--datadir={datadir / 'data'}", f"--port={port}",
             "--bind-address=127.0.0.1", f"--socket={datadir / 'mysqld.sock'}",
             f"--pid-file={datadir / 'mysqld.pid'}",
             "--innodb-flush-log-at-trx-commit=2", "--skip-log-bin", "--local-infile=1",
             f"--log-error={datadir / 'error.log'}", *user_args, *extra_args],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        try:
            _wait_for_port(port, 60, proc)
        except ServerUnavailable as exc:
            proc.kill()
            log = (datadir / "error.log").read_text(errors="replace")[-2000:]
            raise ServerUnavailable(f"MariaDB did not start: {exc}\n{log}") from exc
        return cls(f"mysql://root@127.0.0.1:{port}/mysql", datadir, proc)

    def create_database(self, name: str) -> str:
        import pymysql

        host_port = self.url.split("@", 1)[1].split("/", 1)[0]
        host, port = host_port.split(":")
        conn = pymysql.connect(host=host, port=int(port), user="root", autocommit=True)
        try:
            with conn.cursor() as cur:
                cur.execute(f"DROP DATABASE IF EXISTS `{name}`")
                cur.execute(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4 COLLATE utf8mb4_bin")
        finally:
            conn.close()
        return self.url.rsplit("/", 1)[0] + "/" + name

    def stop(self) -> None:
        if self._proc is not None:
            self._proc.terminate()
            try:
                self._proc.wait(30)
            except subprocess.TimeoutExpired:
                self._proc.kill()
            self._proc = None
        if self._datadir is not None:
            shutil.rmtree(self._datadir, ignore_errors=True)
            self._datadir = None
