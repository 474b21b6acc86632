"""The benchmark scenarios of issue 8 and docs/performance.md, as data.

Datasets (one emulator each): ``main`` = canvas.submissions (46 columns) with ``rows`` rows;
``small`` = the same table with fewer rows for the slow target-postgres anchors; ``big`` = 4×
``rows`` for the memory-growth check; ``tables30`` = 30 canvas tables with 3 s job latency.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from bench.spec import Changes, Count, Kind, Reference, Rows, Scenario, Step, Variant, Window

TABLES_30 = (
    "accounts", "assignment_groups", "assignment_overrides", "assignments", "attachments",
    "calendar_events", "communication_channels", "content_tags", "context_modules",
    "course_sections", "courses", "discussion_entries", "discussion_topics", "enrollment_terms",
    "enrollments", "group_memberships", "groups", "learning_outcomes", "pseudonyms",
    "quiz_questions", "quiz_submissions", "quizzes", "roles", "rubric_assessments",
    "rubric_associations", "rubrics", "submission_comments", "user_account_associations",
    "users", "wiki_pages",
)

# credentials through the environment, not argv (visible in ps to every user)
DAP_ENV = (("DAP_TRACKING", "false"), ("DAP_CLIENT_ID", "{client_id}"),
           ("DAP_CLIENT_SECRET", "{client_secret}"))


@dataclass(frozen=True)
class Sizes:
    rows: int  # submissions rows for the main snapshot / changes scenarios
    changes: int  # changes applied to the main table (80% U / 20% D)
    target_postgres_rows: int  # rows for the slow MeltanoLabs anchors
    tables30_rows: int  # rows per table in the 30-table scenario
    tables30_changes: int  # changes per table in the 30-table scenario
    memory_factor: int = 4

    @classmethod
    def default(cls, rows: int | None = None) -> Sizes:
        rows = rows or 100_000
        return cls(rows, max(1, rows // 10), min(rows, 25_000), 2_000, 200)

    @classmethod
    def full(cls, rows: int | None = None) -> Sizes:
        rows = rows or 1_000_000
        return cls(rows, max(1, rows // 10), min(rows, 250_000), 10_000, 1_000)


# ---- commands ----------------------------------------------------------------------------

TAP_CONFIG = {
    "client_id": "{client_id}", "client_secret": "{client_secret}",
    "base_url": "{base_url}", "namespaces": ["canvas"], "tables": "{tap_tables}",
}
TAP = Step("tap", ("{tap}", "--config", "{run}/tap.json"))
TAP_FROM_STATE = Step("tap", ("{tap}", "--config", "{run}/tap.json", "--state", "{state}"))
TARGET = Step("target", ("{target}", "--config", "{run}/target.json"), stdout="{run}/target.out")


# The probes log in like the tap does: credentials through the environment.
PROBE_ENV = (("DAP_CLIENT_ID", "{client_id}"), ("DAP_CLIENT_SECRET", "{client_secret}"))
TAP_ALONE = "tap-dap | line counter"
TAP_DESELECTED = "tap-dap, 3 properties deselected | line counter"
TAP_HASHED = "tap-dap, 1 property hashed by a stream map | line counter"
# Issue 14's SDK features on the tap alone: a catalog deselecting three submissions columns (a
# catalog only needs the metadata that differs from discovery), and a salted sha256 map.
DESELECTED_CATALOG = {"streams": [{
    "tap_stream_id": "canvas-submissions", "stream": "canvas-submissions",
    "schema": {"type": "object", "properties": {}},
    "metadata": [{"breadcrumb": [], "metadata": {"selected": True}}] + [
        {"breadcrumb": ["properties", name], "metadata": {"selected": False}}
        for name in ("course_id", "user_id", "created_at")],
}]}
HASHED_TAP_CONFIG = {
    **TAP_CONFIG,
    "stream_maps": {"canvas-submissions": {
        "grade": "sha256(grade + config['salt']) if grade is not None else None"}},
    "stream_map_config": {"salt": "bench"},
}
PARSE_PROBE = "download + gunzip + orjson parse"
# The same features end to end: what users see of their cost (the target loads fewer columns).
PG_DESELECTED = "tap-dap, 3 properties deselected | target-dap-sql"
PG_HASHED = "tap-dap, 1 property hashed by a stream map | target-dap-sql"
TAP_WITH_CATALOG = Step("tap", ("{tap}", "--config", "{run}/tap.json", "--catalog",
                                "{run}/catalog.json"))


def tap_alone_variant(name: str, tap: Step, files: dict[str, Any]) -> Variant:
    return Variant(name, Kind.OURS,
                   (tap, Step("counter", ("{python}", "-m", "bench.line_counter"),
                              stdout="{run}/counter.out")),
                   files=files,
                   count=Count("json", file="{run}/counter.out", key="lines", at_least=True),
                   window=Window("{run}/counter.out", "first_record", "eof",
                                 "first RECORD → EOF"))


def probe(command: str, *extra: str) -> Step:
    return Step(command, ("{python}", "-m", "bench.probes", command, "--base-url", "{base_url}",
                          "--table", "{first_table}", *extra),
                stdout="{run}/probe.out", env=PROBE_ENV)


def dap(command: str) -> Step:
    return Step("dap", (
        "{dap}", "--non-interactive", "--base-url", "{base_url}", command, "--namespace", "canvas",
        "--table", "{dap_tables}", "--connection-string", "{db_url}",
    ), env=DAP_ENV)


def ours_pg(name: str, *, incremental: bool = False, keep_as: str | None = None,
            start_from: str | None = None, rows: Rows = Rows.LIVE, tap: Step | None = None,
            tap_files: dict[str, Any] | None = None) -> Variant:
    return Variant(
        name, Kind.OURS, (tap or (TAP_FROM_STATE if incremental else TAP), TARGET),
        files={"tap.json": TAP_CONFIG, **(tap_files or {}),
               "target.json": {"sqlalchemy_url": "{db_url}"}},
        database="postgres", keep_as=keep_as, start_from=start_from,
        count=Count("postgres", "canvas.{table}"), rows=rows,
    )


CHANGES_SQLITE = "tap-dap | target-dap-sql (SQLite)"
CHANGES_PG = "tap-dap | target-dap-sql (PostgreSQL)"


def ours_sqlite(name: str, *, incremental: bool = False, keep_as: str | None = None,
                start_from: str | None = None, rows: Rows = Rows.LIVE) -> Variant:
    return Variant(
        name, Kind.OURS, (TAP_FROM_STATE if incremental else TAP, TARGET),
        files={"tap.json": TAP_CONFIG,
               "target.json": {"sqlalchemy_url": "sqlite:///{run}/dap.db"}},
        database="sqlite", keep_as=keep_as, start_from=start_from,
        count=Count("sqlite", "canvas__{table}"), rows=rows,
    )


def target_postgres(use_copy: bool, reference: Reference | None) -> Variant:
    label = "use_copy" if use_copy else "INSERT"
    return Variant(
        f"tap-dap | target-postgres ({label})", Kind.ANCHOR,
        (TAP, Step("target", ("{target_postgres}", "--config", "{run}/target.json"),
                   stdout="{run}/target.out")),
        files={"tap.json": TAP_CONFIG, "target.json": {
            "sqlalchemy_url": "postgresql+psycopg://{db_user}@{db_host}:{db_port}/{db_name}",
            "use_copy": use_copy, "default_target_schema": "canvas",
        }},
        dataset="small", database="postgres", count=Count("postgres", "canvas.{table}"),
        reference=reference,
    )


def dap_initdb(keep_as: str | None = None) -> Variant:
    return Variant("dap initdb", Kind.ANCHOR, (dap("initdb"),), database="postgres",
                   keep_as=keep_as, count=Count("postgres", "canvas.{table}"),
                   reference=Reference(8_400, 367, "1M rows, 118.7 s"))


PARALLEL_DAP_INITDB = Variant(
    # Setup only: the first table creates the meta schema, the rest load 8 at a time (a
    # sequential initdb of 30 tables would spend ~3 minutes polling the 3 s jobs).
    "dap initdb (parallel setup)", Kind.ANCHOR,
    (Step("dap", ("sh", "-c",
                  '"$1" --non-interactive --base-url "$2" initdb --namespace canvas '
                  '--table "$3" --connection-string "$4" && printf "%s\\n" $5 | '
                  'xargs -P 8 -I %TABLE% "$1" --non-interactive --base-url "$2" '
                  'initdb --namespace canvas --table %TABLE% --connection-string "$4"',
                  "sh", "{dap}", "{base_url}", "{first_table}", "{db_url}", "{other_tables}"),
          env=DAP_ENV),),
    database="postgres", keep_as="dap", count=Count("postgres", "canvas.{table}"),
)


# ---- scenarios ---------------------------------------------------------------------------


def scenarios(sizes: Sizes) -> tuple[Scenario, ...]:
    snapshot_pg = Scenario(
        "snapshot-pg", f"Snapshot of canvas.submissions ({sizes.rows:,} rows) into PostgreSQL",
        "main",
        (
            ours_pg("tap-dap | target-dap-sql", keep_as="ours"),
            dap_initdb(keep_as="dap"),
            Variant("raw COPY FROM", Kind.PROXY, (probe("copy", "--db-url", "{db_url}"),),
                    database="postgres", count=Count("postgres", "bench_copy.{table}"),
                    reference=Reference(197_000, None, "1M rows, 5.1 s, local files")),
            target_postgres(True, Reference(3_250, 177, "250k rows, 76.9 s")),
            target_postgres(False, None),
            ours_pg(PG_DESELECTED, tap=TAP_WITH_CATALOG,
                    tap_files={"catalog.json": DESELECTED_CATALOG}),
            ours_pg(PG_HASHED, tap_files={"tap.json": HASHED_TAP_CONFIG}),
        ),
    )
    changes_pg = changes_scenario("changes-pg", "main", sizes)
    narrow = "narrow rows (46 columns, ~480 B: --null-share 0.78)"
    snapshot_narrow = Scenario(
        "snapshot-pg-narrow", f"Snapshot of canvas.submissions ({sizes.rows:,} {narrow}) into "
        "PostgreSQL", "narrow",
        (ours_pg("tap-dap | target-dap-sql", keep_as="ours"), dap_initdb(keep_as="dap"),
         Variant("raw COPY FROM", Kind.PROXY, (probe("copy", "--db-url", "{db_url}"),),
                 database="postgres", count=Count("postgres", "bench_copy.{table}"))),
    )
    changes_narrow = changes_scenario("changes-pg-narrow", "narrow", sizes)
    # Their own datasets: changes-pg and changes-pg-narrow advance "main" and "narrow".
    changes_mariadb = changes_scenario("changes-mariadb", "main-mariadb", sizes, "mariadb")
    changes_mariadb_narrow = changes_scenario("changes-mariadb-narrow", "narrow-mariadb", sizes,
                                              "mariadb")
    tables_30 = Scenario(
        "tables-30",
        f"30 tables × {sizes.tables30_rows:,} rows, {sizes.tables30_changes:,} changes each, "
        "3 s job latency: incremental sync",
        "tables30",
        (
            ours_pg("tap-dap | target-dap-sql", incremental=True, start_from="ours",
                    rows=Rows.CHANGES),
            Variant("dap syncdb --table all", Kind.ANCHOR, (dap("syncdb"),),
                    database="postgres", start_from="dap",
                    count=Count("postgres", "canvas.{table}"), rows=Rows.CHANGES),
        ),
        seeds=(ours_pg("seed: tap-dap | target-dap-sql", keep_as="ours"), PARALLEL_DAP_INITDB),
        changes=Changes(sizes.tables30_changes),
    )
    snapshot_sqlite = Scenario(
        "snapshot-sqlite", f"Snapshot of canvas.submissions ({sizes.rows:,} rows) into SQLite",
        "main", (ours_sqlite("tap-dap | target-dap-sql"),),
    )
    # Both databases take the same changes in one run (issue 17: SQLite within 1.3× of PG).
    changes_sqlite = Scenario(
        "changes-sqlite",
        f"{sizes.changes:,} changes (80% U / 20% D) onto {sizes.rows:,} rows, SQLite vs PostgreSQL",
        "main-sqlite",
        (ours_sqlite(CHANGES_SQLITE, incremental=True, start_from="ours-sqlite",
                     rows=Rows.CHANGES),
         ours_pg(CHANGES_PG, incremental=True, start_from="ours", rows=Rows.CHANGES)),
        seeds=(ours_sqlite("seed: tap-dap | target-dap-sql (SQLite)", keep_as="ours-sqlite"),
               ours_pg("seed: tap-dap | target-dap-sql", keep_as="ours")),
        changes=Changes(sizes.changes),
    )
    tap_alone = Scenario(
        "tap-alone",
        f"Tap alone ({sizes.rows:,} rows into a line counter) vs download + gunzip + orjson parse",
        "main",
        (
            tap_alone_variant(TAP_ALONE, TAP, {"tap.json": TAP_CONFIG}),
            Variant(PARSE_PROBE, Kind.PROXY, (probe("parse"),),
                    count=Count("json", file="{run}/probe.out"),
                    reference=Reference(230_000, 15, "1M rows, 4.35 s, local files"),
                    window=Window("{run}/probe.out", "first_data", "end",
                                  "first byte parsed → end")),
            tap_alone_variant(TAP_DESELECTED, TAP_WITH_CATALOG,
                              {"tap.json": TAP_CONFIG, "catalog.json": DESELECTED_CATALOG}),
            tap_alone_variant(TAP_HASHED, TAP, {"tap.json": HASHED_TAP_CONFIG}),
        ),
    )
    memory = Scenario(
        "memory-4x",
        f"Snapshot of {sizes.rows * sizes.memory_factor:,} rows into PostgreSQL (memory growth)",
        "big", (ours_pg("tap-dap | target-dap-sql"),),
    )
    return (snapshot_pg, snapshot_sqlite, changes_sqlite, tap_alone, memory, changes_pg,
            snapshot_narrow, changes_narrow, changes_mariadb, changes_mariadb_narrow, tables_30)


def changes_scenario(name: str, dataset: str, sizes: Sizes, database: str = "postgres") -> Scenario:
    """rows/10 changes onto the snapshot: tap-dap | target-dap-sql against ``dap syncdb``."""
    shape = " (narrow rows)" if dataset.startswith("narrow") else ""
    server = "MariaDB" if database == "mariadb" else "PostgreSQL"
    table = "canvas__{table}" if database == "mariadb" else "canvas.{table}"

    def ours(variant: str, **kw: Any) -> Variant:
        return Variant(
            variant, Kind.OURS, (TAP_FROM_STATE if kw.get("start_from") else TAP, TARGET),
            files={"tap.json": TAP_CONFIG, "target.json": {"sqlalchemy_url": "{db_url}"}},
            database=database, count=Count(database, table), **kw)

    def official(variant: str, command: str, **kw: Any) -> Variant:
        return Variant(variant, Kind.ANCHOR, (dap(command),), database=database,
                       count=Count(database, table), **kw)

    reference = Reference(6_500, 230, "100k changes, 15.5 s") if dataset == "main" else None
    return Scenario(
        name,
        f"{sizes.changes:,} changes (80% U / 20% D) onto {sizes.rows:,} rows{shape}, {server}",
        dataset,
        (ours("tap-dap | target-dap-sql", start_from="ours", rows=Rows.CHANGES),
         official("dap syncdb", "syncdb", start_from="dap", rows=Rows.CHANGES,
                  reference=reference)),
        seeds=(ours("seed: tap-dap | target-dap-sql", keep_as="ours"),
               official("dap initdb", "initdb", keep_as="dap")),
        changes=Changes(sizes.changes),
    )


SCENARIO_NAMES = ("snapshot-pg", "snapshot-sqlite", "changes-sqlite", "tap-alone", "memory-4x",
                  "changes-pg", "snapshot-pg-narrow", "changes-pg-narrow", "changes-mariadb",
                  "changes-mariadb-narrow", "tables-30")
