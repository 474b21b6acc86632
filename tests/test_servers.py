"""The throwaway database servers the suite depends on come up and accept writes."""

import psycopg
import pymysql
import pytest


@pytest.mark.postgres
def test_postgres_server_accepts_writes(pg_url: str) -> None:
    with psycopg.connect(pg_url) as conn:
        conn.execute("CREATE TABLE t (id int PRIMARY KEY)")
        conn.execute("INSERT INTO t VALUES (1), (2)")
        assert conn.execute("SELECT count(*) FROM t").fetchone() == (2,)


@pytest.mark.mariadb
def test_mariadb_server_accepts_writes(mariadb_url: str) -> None:
    rest = mariadb_url.split("@", 1)[1]
    host, port = rest.split("/", 1)[0].split(":")
    conn = pymysql.connect(host=host, port=int(port), user="root", database=rest.split("/", 1)[1])
    try:
        with conn.cursor() as cur:
            cur.execute("CREATE TABLE t (id int PRIMARY KEY)")
            cur.execute("INSERT INTO t VALUES (1), (2)")
            cur.execute("SELECT count(*) FROM t")
            assert cur.fetchone() == (2,)
    finally:
        conn.close()
