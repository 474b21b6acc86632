"""Passwords in a database URL, wherever they are written (userinfo or a `password=` query
parameter, which libpq reads), are kept out of reprs, driver messages and workers' environment."""

from __future__ import annotations

import pytest

from dap_replicator.connection import DatabaseConnection, redacted
from target_dap_sql.dialects.postgresql import redact
from target_dap_sql.dialects.urls import url_refusal, url_secrets
from target_dap_sql.workers import worker_environment


@pytest.mark.parametrize(("url", "secrets"), [
    ("postgresql://u:S3cretPw@h/db", ["S3cretPw"]),
    ("postgresql://u@h/db?password=S3cretPw", ["S3cretPw"]),
    ("postgresql://u@h/db?sslmode=require&PASSWORD=S3cret%23Pw", ["S3cret%23Pw", "S3cret#Pw"]),
    ("postgresql://u:One1Pw@h/db?password=Two2Pw&password=Three3Pw",
     ["Three3Pw", "One1Pw", "Two2Pw"]),
    ("postgresql://u@h/db?passwordless=1", []),
    ("sqlite:///dap.db", []),
])
def test_url_secrets(url: str, secrets: list[str]) -> None:
    assert sorted(url_secrets(url)) == sorted(secrets)
    assert [len(s) for s in url_secrets(url)] == sorted(map(len, secrets), reverse=True)


def test_reprs_and_messages_hide_a_query_password() -> None:
    url = "postgresql://u@127.0.0.1:1/db?sslmode=disable&password=Qu3ryPw%21&application_name=x"
    assert redacted(url) == ("postgresql://u@127.0.0.1:1/db?sslmode=disable&password=***"
                             "&application_name=x")
    assert "Qu3ryPw" not in repr(DatabaseConnection(url))
    assert redact("auth failed for Qu3ryPw! and Qu3ryPw%21", url) == (
        "auth failed for *** and ***")


def test_workers_do_not_inherit_a_variable_holding_a_query_password(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PIPELINE_DB", "postgresql://u@h/db?password=Qu3ryPw")
    monkeypatch.setenv("HARMLESS", "stays")
    env = worker_environment(url_secrets("postgresql://u@h/db?password=Qu3ryPw"))
    assert "PIPELINE_DB" not in env
    assert env["HARMLESS"] == "stays"


@pytest.mark.parametrize("url", [
    "postgresql://u:pw@h:5432/db?application_name=etl@prod",
    "postgresql://h/db?user=admin@srv",  # Azure's user form, in the query
    "postgresql://u:pw@h/db?sslcert=/home/me@corp/client.crt",
    "postgresql://u:p%40w%23%25@[::1]:5432/db",
    "postgresql:///db?host=/tmp",
    "mysql://u:pw@h/db",
])
def test_an_at_sign_outside_the_user_part_is_no_credential(url: str) -> None:
    assert url_refusal(url) is None


@pytest.mark.parametrize(("url", "what"), [
    ("postgresql://u:My#S3cret@h/db", "'#', '/' or '?'"),
    ("postgresql://u:pa/ss@h/db", "'#', '/' or '?'"),
    ("postgresql://u:pa?ss@h/db", "'#', '/' or '?'"),
    ("postgresql://u:Secr@t@h/db?application_name=a@b", "an '@'"),
    ("mysql://u:50%off@h/db", "a '%'"),
])
def test_a_password_readers_would_split_differently_is_refused(url: str, what: str) -> None:
    refusal = url_refusal(url)
    assert refusal is not None and f"holds {what}" in refusal
    assert not any(piece in refusal for piece in ("S3cret", "ss@", "Secr", "50%off"))
