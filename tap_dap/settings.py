"""The tap's settings: JSON schema (shown by ``--about``) and a typed view of a validated config."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

from singer_sdk import typing as th

from tap_dap.client import DAP_API_URL_DEFAULT
from tap_dap.client.config import DEFAULT_OBJECT_DOWNLOAD_TIMEOUT, DEFAULT_REQUEST_TIMEOUT
from tap_dap.client.retry import DEFAULT_MAX_RETRY_AFTER, DEFAULT_RETRY_BUDGET
from tap_dap.errors import ConfigurationError
from tap_dap.state import parse_user_timestamp

# A number, or the same number as a string: Meltano 4.4 turns a `kind: decimal` setting that comes
# from an environment variable (TAP_DAP_POLL_INTERVAL=0.5) into a Decimal it then cannot write to
# JSON, so meltano.yml declares fractional settings `kind: string` and the tap parses them.
RETRY_BUDGET, REQUEST_TIMEOUT = int(DEFAULT_RETRY_BUDGET), int(DEFAULT_REQUEST_TIMEOUT)
OBJECT_DOWNLOAD_TIMEOUT, MAX_RETRY_AFTER = (int(DEFAULT_OBJECT_DOWNLOAD_TIMEOUT),
                                            int(DEFAULT_MAX_RETRY_AFTER))

NUMBER_OR_NUMERIC_STRING = th.CustomType({"type": ["number", "string"],
                                          "pattern": r"^\s*[0-9]*\.?[0-9]+\s*$"})

CONFIG_JSONSCHEMA: dict[str, Any] = th.PropertiesList(
    th.Property("client_id", th.StringType, required=True, title="Client ID",
                description="DAP client ID (from the Instructure Identity Services key)."),
    th.Property("client_secret", th.StringType, required=True, secret=True, title="Client Secret",
                description="DAP client secret."),
    th.Property("base_url", th.StringType, default=DAP_API_URL_DEFAULT, title="Base URL",
                description="DAP API gateway URL."),
    th.Property("namespaces", th.ArrayType(th.StringType), default=["canvas"],
                description="DAP namespaces to replicate, e.g. canvas, canvas_logs, catalog."),
    th.Property("tables", th.ArrayType(th.StringType),
                description="Tables to replicate (default: all). Names or shell globs, matched "
                "against the table name or `<namespace>-<table>`. A plain name that matches no "
                "table is an error."),
    th.Property("start_mode", th.StringType, default="snapshot",
                allowed_values=["snapshot", "incremental"],
                description="How a table without a bookmark starts: `snapshot` (full snapshot), or "
                "`incremental` (changes since `start_date`, e.g. for canvas_logs)."),
    th.Property("start_date", th.DateTimeType,
                description="With start_mode=incremental: the `since` of a table's first query."),
    th.Property("on_snapshot_required", th.StringType, default="resnapshot",
                allowed_values=["resnapshot", "fail"],
                description="When DAP refuses an incremental query (table reloaded, bookmark out "
                "of range): `resnapshot` the table, or `fail` the stream."),
    th.Property("max_concurrent_jobs", th.IntegerType, default=10,
                description="Query jobs waiting/running on the server at the same time."),
    th.Property("max_jobs_per_minute", th.IntegerType,
                description="Fixed cap on job creation per minute. Default: none; the tap adapts "
                "to the server (HTTP 429 + Retry-After lowers its rate)."),
    th.Property("download_concurrency", th.IntegerType, default=2,
                description="Objects downloaded at the same time (prefetch of upcoming streams)."),
    th.Property("prefetch_buffer_mb", th.IntegerType, default=8,
                description="Memory for records prefetched ahead of the stream being written."),
    th.Property("job_timeout", th.IntegerType, default=14400,
                description="Seconds a query job may take on the server before its stream fails."),
    th.Property("poll_interval", NUMBER_OR_NUMERIC_STRING, default=5,
                description="Longest wait in seconds between job status polls (a young "
                "job is polled after a quarter of its age, at least 0.5 s)."),
    th.Property("retry_budget_seconds", NUMBER_OR_NUMERIC_STRING, default=RETRY_BUDGET,
                description="How long one DAP API call or object download keeps retrying "
                "server errors (5xx), broken connections and timeouts before its stream fails."),
    th.Property("request_timeout_seconds", NUMBER_OR_NUMERIC_STRING, default=REQUEST_TIMEOUT,
                description="Longest DAP API request, answer included (a slow one is retried)."),
    th.Property("object_download_timeout_seconds", NUMBER_OR_NUMERIC_STRING,
                default=OBJECT_DOWNLOAD_TIMEOUT,
                description="Longest download of one object file (a slow one is retried)."),
    th.Property("max_retry_after_seconds", NUMBER_OR_NUMERIC_STRING, default=MAX_RETRY_AFTER,
                description="Longest wait for a server's Retry-After; a longer one is logged "
                "and cut to this."),
    th.Property("emit_activate_version", th.BooleanType, default=True,
                description="Emit ACTIVATE_VERSION before and after a snapshot so the target "
                "replaces the table (never for canvas_logs tables: their snapshots merge, as "
                "DAP keeps only 30 days of them)."),
).to_dict()  # fmt: skip


#: Beyond these a setting is a typo, not a plan: a million download threads take a minute to
#: fail with "can't start new thread".
UPPER_BOUNDS = {"max_concurrent_jobs": 100, "download_concurrency": 64,
                "prefetch_buffer_mb": 16_384, "max_jobs_per_minute": 10_000,
                "retry_budget_seconds": 86_400, "request_timeout_seconds": 3_600,
                "object_download_timeout_seconds": 86_400, "max_retry_after_seconds": 86_400}


def check_env_settings(environ: Mapping[str, str]) -> None:
    """With ``--config ENV``: one clear error for a TAP_DAP_* number that does not parse (the
    SDK's parser raises a bare ValueError traceback)."""
    for name, prop in CONFIG_JSONSCHEMA["properties"].items():
        variable = f"TAP_DAP_{name.upper()}"
        raw = environ.get(variable)
        kinds = prop.get("type", [])
        kinds = [kinds] if isinstance(kinds, str) else kinds
        if raw is None or "string" in kinds:
            continue
        parse = int if "integer" in kinds else float if "number" in kinds else None
        try:
            if parse is not None:
                parse(raw)
        except ValueError:
            raise ConfigurationError(f"environment variable {variable}={raw!r}: not "
                                     f"{'an integer' if parse is int else 'a number'}") from None


def check_base_url(url: Any) -> None:
    """One clear error for a base_url that is not an http(s) URL with a host."""
    try:
        parts = urlsplit(str(url))
        host, _ = parts.hostname, parts.port
    except ValueError as exc:
        raise ConfigurationError(f"setting base_url {url!r} is not a valid URL ({exc})") from None
    if parts.scheme not in ("http", "https") or not host:
        raise ConfigurationError(f"setting base_url {url!r} must be an http(s) URL with a host, "
                                 f"e.g. {DAP_API_URL_DEFAULT}")


@dataclass(frozen=True)
class TapSettings:
    """Typed, cross-checked settings (the SDK has already applied defaults and the schema)."""

    client_id: str
    client_secret: str
    base_url: str
    namespaces: tuple[str, ...]
    tables: tuple[str, ...] | None
    start_mode: str
    start_date: datetime | None
    on_snapshot_required: str
    max_concurrent_jobs: int
    max_jobs_per_minute: int | None
    download_concurrency: int
    prefetch_buffer_bytes: int
    job_timeout: float
    poll_interval: float
    retry_budget_seconds: float
    request_timeout_seconds: float
    object_download_timeout_seconds: float
    max_retry_after_seconds: float
    emit_activate_version: bool

    def __repr__(self) -> str:
        return f"TapSettings(client_id={self.client_id!r}, base_url={self.base_url!r}, ...)"

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> TapSettings:
        def positive(name: str, default: float) -> Any:
            value = config.get(name, default)
            if isinstance(value, str):
                try:
                    value = float(value)
                except ValueError:
                    raise ConfigurationError(
                        f"setting {name} must be a positive number, got {value!r}") from None
            if value is None or not value > 0:  # `not >`: NaN too
                raise ConfigurationError(f"setting {name} must be a positive number, got {value!r}")
            return value

        start_date = None
        if config.get("start_date"):
            start_date = parse_user_timestamp(str(config["start_date"]), "setting start_date")
        start_mode = config.get("start_mode", "snapshot")
        if start_mode == "incremental" and start_date is None:
            raise ConfigurationError("setting start_mode=incremental needs a start_date")
        namespaces = tuple(config.get("namespaces") or ("canvas",))
        if not all(isinstance(ns, str) and ns for ns in namespaces):
            raise ConfigurationError(f"setting namespaces must list names, got {namespaces!r}")
        per_minute = config.get("max_jobs_per_minute")
        for name, most in UPPER_BOUNDS.items():
            value = config.get(name)
            if isinstance(value, str):  # numeric strings: `positive` below reports bad ones
                try:
                    value = float(value)
                except ValueError:
                    continue
            if isinstance(value, int | float) and value > most:
                raise ConfigurationError(f"setting {name} must be at most {most:,}, got "
                                         f"{config.get(name)!r}")
        base_url = config.get("base_url") or DAP_API_URL_DEFAULT
        check_base_url(base_url)
        return cls(
            client_id=config["client_id"],
            client_secret=config["client_secret"],
            base_url=base_url,
            namespaces=namespaces,
            tables=tuple(config["tables"]) if config.get("tables") else None,
            start_mode=start_mode,
            start_date=start_date,
            on_snapshot_required=config.get("on_snapshot_required", "resnapshot"),
            max_concurrent_jobs=int(positive("max_concurrent_jobs", 10)),
            max_jobs_per_minute=None
            if per_minute is None
            else int(positive("max_jobs_per_minute", 1)),
            download_concurrency=int(positive("download_concurrency", 2)),
            prefetch_buffer_bytes=int(positive("prefetch_buffer_mb", 8)) * 1024 * 1024,
            job_timeout=float(positive("job_timeout", 14400)),
            poll_interval=float(positive("poll_interval", 5)),
            retry_budget_seconds=float(positive("retry_budget_seconds", RETRY_BUDGET)),
            request_timeout_seconds=float(positive("request_timeout_seconds", REQUEST_TIMEOUT)),
            object_download_timeout_seconds=float(
                positive("object_download_timeout_seconds", OBJECT_DOWNLOAD_TIMEOUT)),
            max_retry_after_seconds=float(positive("max_retry_after_seconds", MAX_RETRY_AFTER)),
            emit_activate_version=bool(config.get("emit_activate_version", True)),
        )
