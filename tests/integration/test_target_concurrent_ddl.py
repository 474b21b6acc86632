"""Parallel pipelines into one PostgreSQL database must not race on our DDL.

Found by the two-shard e2e test on a fresh machine: two targets creating the instructure_dap schema
at the same moment hit a unique violation in pg_namespace.
"""

from __future__ import annotations

import threading

import psycopg
import pytest

from target_dap_sql.dialects import dialect_for_url


@pytest.mark.postgres
def test_concurrent_targets_create_meta_tables_once(postgres_server) -> None:
    for round_no in range(3):  # the race is timing dependent: several fresh databases
        url = postgres_server.create_database(f"ddl_race_{round_no}")
        start = threading.Barrier(6)
        errors: list[BaseException] = []

        def create_meta(url: str = url, start: threading.Barrier = start,
                        errors: list[BaseException] = errors) -> None:
            dialect = dialect_for_url(url)
            try:
                dialect.connect()
                start.wait()
                dialect.ensure_meta_tables()
            except BaseException as exc:  # noqa: BLE001 - collected for the assertion
                errors.append(exc)
            finally:
                dialect.close()

        threads = [threading.Thread(target=create_meta) for _ in range(6)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        assert errors == []
        with psycopg.connect(url) as conn:
            assert conn.execute(
                'SELECT "version" FROM instructure_dap.database_version').fetchall() == [(1,)]
