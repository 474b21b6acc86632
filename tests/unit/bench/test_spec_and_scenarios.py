"""Templates resolve as documented, and every scenario refers only to placeholders that exist."""

from __future__ import annotations

import pytest

from bench.errors import BenchError
from bench.runner import Tools
from bench.scenarios import PARSE_PROBE, SCENARIO_NAMES, TABLES_30, Sizes, scenarios
from bench.spec import Changes, fields_of, fill, fill_json

# what Runner._context and Runner._database put into every run's context
CONTEXT_KEYS = {
    *Tools.__dataclass_fields__, "base_url", "client_id", "client_secret", "run", "run_dir",
    "dataset", "tap_tables", "dap_tables", "first_table", "other_tables", "state", "db_url",
    "db_name", "db_host", "db_port", "db_user",
}


def test_fill_json_keeps_types_and_drops_none() -> None:
    template = {"url": "http://{host}:{port}/x", "port": "{port}", "tables": "{tables}",
                "maybe": "{nothing}", "nested": [{"flag": True, "name": "{host}"}]}
    context = {"host": "h", "port": 5432, "tables": ["a", "b"], "nothing": None}
    assert fill_json(template, context) == {
        "url": "http://h:5432/x", "port": 5432, "tables": ["a", "b"],
        "nested": [{"flag": True, "name": "h"}],
    }


def test_unknown_placeholder_names_the_template() -> None:
    with pytest.raises(BenchError, match=r"^unknown placeholder 'db_urll' in '--url=\{db_urll\}'$"):
        fill("--url={db_urll}", {"db_url": "x"})


def test_changes_split_80_20() -> None:
    assert (Changes(100_000).updates, Changes(100_000).deletes) == (80_000, 20_000)
    assert (Changes(7).updates, Changes(7).deletes) == (6, 1)


@pytest.mark.parametrize("sizes", [Sizes.default(), Sizes.full(), Sizes.default(2000)])
def test_every_placeholder_is_provided(sizes: Sizes) -> None:
    for scenario in scenarios(sizes):
        for variant in (*scenario.variants, *scenario.seeds):
            used = {name for step in variant.steps
                    for arg in (*step.argv, step.stdout or "", *(v for _, v in step.env))
                    for name in fields_of(arg)}
            outputs = (variant.count.file if variant.count else "",
                       variant.window.file if variant.window else "")
            used |= {name for text in outputs for name in fields_of(text)}
            used |= {name for template in variant.files.values()
                     for value in _strings(template) for name in fields_of(value)}
            assert used <= CONTEXT_KEYS, (scenario.name, variant.name, used - CONTEXT_KEYS)


def _strings(template: object) -> list[str]:
    if isinstance(template, str):
        return [template]
    if isinstance(template, dict):
        return [s for v in template.values() for s in _strings(v)]
    if isinstance(template, list | tuple):
        return [s for v in template for s in _strings(v)]
    return []


def test_incremental_variants_have_a_seed_for_their_template() -> None:
    for scenario in scenarios(Sizes.default()):
        seeded = {seed.keep_as for seed in scenario.seeds}
        for variant in scenario.variants:
            if variant.start_from:
                assert variant.start_from in seeded, (scenario.name, variant.name)


def test_sizes_follow_the_issue() -> None:
    full = Sizes.full()
    assert (full.rows, full.changes, full.target_postgres_rows) == (1_000_000, 100_000, 250_000)
    assert Sizes.default(40_000) == Sizes(40_000, 4_000, 25_000, 2_000, 200)
    assert len(set(TABLES_30)) == 30
    assert tuple(s.name for s in scenarios(full)) == SCENARIO_NAMES



def test_outputs_a_run_reads_are_written_by_one_of_its_steps() -> None:
    for scenario in scenarios(Sizes.default()):
        for variant in scenario.variants:
            written = {step.stdout for step in variant.steps}
            if variant.count is not None and variant.count.where == "json":
                assert variant.count.file in written, (scenario.name, variant.name)
            if variant.window is not None:
                assert variant.window.file in written, (scenario.name, variant.name)


def test_probes_do_the_remote_work_themselves() -> None:
    # no files fetched beforehand: each probe talks to the emulator of its run
    snapshot, tap_alone = (s for s in scenarios(Sizes.default())
                           if s.name in ("snapshot-pg", "tap-alone"))
    for variant in (snapshot.variant("raw COPY FROM"), tap_alone.variant(PARSE_PROBE)):
        (step,) = variant.steps
        assert step.argv[1:5] == ("-m", "bench.probes", step.role, "--base-url")
        assert step.argv[5] == "{base_url}"
        assert dict(step.env) == {"DAP_CLIENT_ID": "{client_id}",
                                  "DAP_CLIENT_SECRET": "{client_secret}"}


def test_skip_takes_variant_names_with_commas_and_refuses_unknown_ones() -> None:
    from bench.cli import skipped_variants
    from bench.errors import BenchError
    from bench.scenarios import PG_DESELECTED

    known = {PG_DESELECTED, "dap initdb", "raw COPY FROM"}
    assert "," in PG_DESELECTED
    assert skipped_variants(f" dap initdb,{PG_DESELECTED}, raw COPY FROM,", known) == known
    assert skipped_variants("", known) == set()
    with pytest.raises(BenchError, match="--skip: no variant named 'dap initbd'"):
        skipped_variants("dap initbd", known)
