"""Discovery: namespaces x tables (filtered by the ``tables`` setting) -> converted schemas."""

from __future__ import annotations

import fnmatch
import logging
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from tap_dap.client import NotFoundError
from tap_dap.errors import ConfigurationError
from tap_dap.schema import StreamSchema, convert_table_schema, stream_name_for
from tap_dap.settings import TapSettings

logger = logging.getLogger("tap-dap.discovery")

#: Schema requests in flight during discovery (DAP allows 500 schema requests per minute).
SCHEMA_FETCH_WORKERS = 8
_GLOB_CHARS = frozenset("*?[")


@dataclass(frozen=True)
class DiscoveredTable:
    namespace: str
    table: str
    schema: StreamSchema


def discover_tables(session: Any, settings: TapSettings) -> list[DiscoveredTable]:
    """Every table of the configured namespaces matching ``tables``, with its Singer schema."""
    available: list[tuple[str, str]] = []
    for namespace in settings.namespaces:
        try:
            tables = session.get_tables(namespace)
        except NotFoundError as exc:
            raise ConfigurationError(
                f"namespace {namespace!r} does not exist on {settings.base_url} "
                f"(NotFoundError, uuid {exc.uuid})"
            ) from None
        available.extend((namespace, table) for table in tables)
    selected = select_tables(available, settings.tables)
    check_stream_names(selected)

    def fetch(item: tuple[str, str]) -> DiscoveredTable:
        namespace, table = item
        versioned = session.get_table_schema(namespace, table)
        schema = convert_table_schema(namespace, table, versioned.schema, versioned.version)
        return DiscoveredTable(namespace, table, schema)

    with ThreadPoolExecutor(SCHEMA_FETCH_WORKERS, thread_name_prefix="dap-schema") as pool:
        discovered = list(pool.map(fetch, selected))
    logger.info(
        "discovered %d table(s) in namespace(s) %s", len(discovered), ", ".join(settings.namespaces)
    )
    return discovered


def check_stream_names(tables: list[tuple[str, str]]) -> None:
    """Refuse two tables whose stream names coincide (namespace `a-b` + table `c` and namespace
    `a` + table `b-c` are both `a-b-c`): the target would merge their rows into one table."""
    owners: dict[str, tuple[str, str]] = {}
    for namespace, table in tables:
        name = stream_name_for(namespace, table)
        other = owners.setdefault(name, (namespace, table))
        if other != (namespace, table):
            raise ConfigurationError(
                f"tables {other[0]}.{other[1]} and {namespace}.{table} would both be stream "
                f"{name!r}; select only one of them with the tables setting")


def select_tables(
    available: list[tuple[str, str]], patterns: tuple[str, ...] | None
) -> list[tuple[str, str]]:
    """Filter ``(namespace, table)`` pairs by names/globs matched against ``table`` or
    ``<namespace>-<table>``. A plain name that matches nothing is a configuration error."""
    if patterns is None:
        return list(available)
    chosen: list[tuple[str, str]] = []
    for pattern in patterns:
        matches = [
            item
            for item in available
            if fnmatch.fnmatchcase(item[1], pattern)
            or fnmatch.fnmatchcase(stream_name_for(*item), pattern)
        ]
        if not matches:
            namespaces = sorted({ns for ns, _ in available}) or ["(none)"]
            if _GLOB_CHARS.isdisjoint(pattern):
                raise ConfigurationError(
                    f"setting tables: table {pattern!r} does not exist in namespace(s) "
                    f"{', '.join(namespaces)}"
                )
            logger.warning("setting tables: pattern %r matches no table", pattern)
        chosen.extend(m for m in matches if m not in chosen)
    return sorted(chosen, key=lambda item: stream_name_for(*item))
