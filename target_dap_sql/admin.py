"""Admin subcommands of `target-dap-sql`: drop, list, export-state, dbt-sources.

They read the target's own settings (`--config FILE`, repeatable, or `--config ENV`), so
`meltano invoke target-dap-sql list` works too (Meltano puts `--config FILE` before the command).
Everything they know comes from the `instructure_dap` meta table, the same one the official `dap`
CLI uses, so they work on databases either tool created.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from target_dap_sql.dialects import dialect_for_url
from target_dap_sql.errors import TargetDapSQLError
from target_dap_sql.meta import MetaRow, bookmark_of
from target_dap_sql.replica_db import ReplicaDatabase

COMMANDS = ("drop", "list", "export-state", "dbt-sources")
#: Options of the SDK's CLI that take a value (so their value is never taken for a command).
_VALUE_OPTIONS = {"--config", "--input", "--state", "--catalog", "--format"}
#: Reads the `--config` values into the target's settings, validated exactly as for a normal run
#: (target.py passes it in, so this module never imports the target: no import circle).
SettingsReader = Callable[[list[str]], dict[str, Any]]


class AdminError(TargetDapSQLError):
    """An admin command cannot do what was asked (nothing was changed)."""


# Shown by `target-dap-sql --help` under the SDK's options ("\b": click keeps the line breaks).
ADMIN_HELP = """\b
Admin commands (same --config; `target-dap-sql COMMAND --help` for options):
  list            list replicated tables: timestamp, schema version, rows
  export-state    print the Singer state of the replica (to continue a dap CLI database)
  drop            drop replicated tables, their enum types and meta rows
  dbt-sources     write a dbt sources.yml for the replica"""


def admin_command(argv: Sequence[str]) -> str | None:
    """The admin command named in argv (before the SDK sees it), or None for a normal run."""
    skip = False
    for arg in argv:
        if skip:
            skip = False
            continue
        if arg in _VALUE_OPTIONS:
            skip = True
        elif not arg.startswith("-"):
            return arg if arg in COMMANDS else None
    return None


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="target-dap-sql",
                                     description="Manage a DAP replica database.")
    parser.add_argument("--config", action="append", default=[],
                        help="settings file (repeatable) or ENV for TARGET_DAP_SQL_* variables")
    sub = parser.add_subparsers(dest="command", required=True)
    drop = sub.add_parser("drop", help="drop replicated tables, their enum types and meta rows")
    drop.add_argument("--namespace", required=True)
    drop.add_argument("--table", required=True,
                      help="table name, comma-separated names, or 'all' (every table of the "
                      "namespace)")
    listing = sub.add_parser("list", help="list replicated tables")
    listing.add_argument("--json", action="store_true", help="print JSON instead of a table")
    state = sub.add_parser("export-state", help="print the Singer state of the replica")
    state.add_argument("--namespace", help="only this namespace")
    dbt = sub.add_parser("dbt-sources", help="write a dbt sources.yml for the replica")
    dbt.add_argument("--output", default="sources.yml", help="file to write ('-' = stdout)")
    return parser


def _split_config(argv: Sequence[str]) -> tuple[list[str], list[str]]:
    """(--config values, the other arguments): --config may stand before or after the command."""
    configs: list[str] = []
    rest: list[str] = []
    args = iter(argv)
    for arg in args:
        if arg == "--config":
            configs.append(next(args, ""))
        elif arg.startswith("--config="):
            configs.append(arg.split("=", 1)[1])
        else:
            rest.append(arg)
    return configs, rest


def main(argv: Sequence[str], read_settings: SettingsReader) -> int:
    configs, rest = _split_config(argv)
    args = _parser().parse_args(rest)
    args.config = configs
    try:
        config = read_settings(args.config)
        dialect = dialect_for_url(config.get("sqlalchemy_url") or "sqlite:///dap.db")
        try:
            _dispatch(args, ReplicaDatabase(dialect))
        finally:
            dialect.close()
    except TargetDapSQLError as exc:
        print(f"target-dap-sql {args.command}: {exc}", file=sys.stderr)
        return 1
    return 0


def _dispatch(args: argparse.Namespace, db: ReplicaDatabase) -> None:
    if args.command == "drop":
        drop(db, args.namespace, args.table)
    elif args.command == "list":
        rows = list_tables(db)
        print(json.dumps(rows, indent=2) if args.json else format_table(rows))
    elif args.command == "export-state":
        print(json.dumps(export_state(db.meta_rows(), args.namespace)))
    else:
        text = dbt_sources(db)
        if args.output == "-":
            sys.stdout.write(text)
        else:
            Path(args.output).write_text(text)
            print(f"wrote {args.output}", file=sys.stderr)


# --- commands ---------------------------------------------------------------------------------

def drop(db: ReplicaDatabase, namespace: str, tables: str) -> list[str]:
    """Drop tables of a namespace (all checked before anything changes); the dropped names."""
    rows = [r for r in db.meta_rows() if r.source_namespace == namespace]
    if tables == "all":
        chosen = rows
        if not chosen:
            raise AdminError(f"namespace '{namespace}' has no replicated tables")
    else:
        wanted = [t.strip() for t in tables.split(",") if t.strip()]
        by_table = {r.source_table: r for r in rows}
        unknown = [t for t in wanted if t not in by_table]
        if unknown or not wanted:
            raise AdminError(
                f"not replicated in this database: {', '.join(f'{namespace}.{t}' for t in unknown)}"
                if unknown else "--table names no table")
        chosen = [by_table[t] for t in wanted]
    for row in chosen:
        db.drop(row)
        print(f"dropped {row.source_namespace}.{row.source_table} ({db.qualified(row)})",
              file=sys.stderr)
    return [r.source_table for r in chosen]


def list_tables(db: ReplicaDatabase) -> list[dict[str, Any]]:
    return [{
        "namespace": r.source_namespace,
        "table": r.source_table,
        "timestamp": bookmark_of(r).as_state_entry()["timestamp"],
        "schema_version": r.schema_version,
        "rows": db.count(r),
    } for r in db.meta_rows()]


def format_table(rows: list[dict[str, Any]]) -> str:
    if not rows:
        return "no replicated tables"
    header = ["namespace", "table", "timestamp", "schema_version", "rows"]
    cells = [header] + [["-" if r[h] is None else str(r[h]) for h in header] for r in rows]
    widths = [max(len(c[i]) for c in cells) for i in range(len(header))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)).rstrip()
                     for line in cells)


def export_state(rows: list[MetaRow], namespace: str | None = None) -> dict[str, Any]:
    """The Singer state tap-dap resumes from: one bookmark per replicated table."""
    return {"bookmarks": {
        f"{r.source_namespace}-{r.source_table}": bookmark_of(r).as_state_entry()
        for r in rows if namespace is None or r.source_namespace == namespace}}


def _describe(node: dict[str, Any]) -> str | None:
    text = node.get("description") or node.get("title")
    return " ".join(text.split()) if isinstance(text, str) and text.strip() else None


def dbt_sources(db: ReplicaDatabase) -> str:
    """A dbt `sources.yml` (version 2): one source per namespace, descriptions from DAP."""
    sources: dict[str, dict[str, Any]] = {}
    for row in db.meta_rows():
        source = sources.setdefault(row.source_namespace, {
            "name": row.source_namespace, "schema": db.dbt_schema(row), "tables": []})
        source["tables"].append(_dbt_table(db, row))
    import yaml  # here: every loading run imports this module to recognise admin commands

    return yaml.safe_dump({"version": 2, "sources": list(sources.values())},
                          sort_keys=False, allow_unicode=True, width=100)


def _dbt_table(db: ReplicaDatabase, row: MetaRow) -> dict[str, Any]:
    try:
        schema = json.loads(row.schema_description)
        key = schema["properties"]["key"]
        value = schema["properties"].get("value", {})
    except (ValueError, KeyError, TypeError):
        raise AdminError(f"{row.source_namespace}.{row.source_table}: the stored "
                         "schema_description is not a DAP schema") from None
    keys = list(key.get("properties", {}))
    table: dict[str, Any] = {"name": row.source_table}
    identifier = db.identifier(row)
    if identifier != row.source_table:
        table["identifier"] = identifier
    title, description = schema.get("title"), _describe({"description": schema.get("description")})
    if title or description:
        table["description"] = " — ".join(t for t in (title, description) if t)
    columns = []
    for parent in (key, value):
        for name, node in parent.get("properties", {}).items():
            column: dict[str, Any] = {"name": name}
            text = _describe(node if isinstance(node, dict) else {})
            if text:
                column["description"] = text
            if name in keys:
                # `unique` on one column of a composite key would be wrong.
                column["data_tests"] = ["unique", "not_null"] if len(keys) == 1 else ["not_null"]
            columns.append(column)
    table["columns"] = columns
    return table


__all__ = ["COMMANDS", "AdminError", "admin_command", "main"]
