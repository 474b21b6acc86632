"""The duration estimate printed at start: every run has a pace, and it tracks a measured run."""

from __future__ import annotations

import re

import pytest

from bench.cli import datasets_for, select
from bench.estimate import PACES, describe, estimate
from bench.scenarios import SCENARIO_NAMES, Sizes, scenarios
from bench.services import EmulatorSpec


def specs(sizes: Sizes) -> dict[str, EmulatorSpec]:
    return {name: data.spec for name, data in datasets_for(sizes).items()}


def chosen(sizes: Sizes, names: str) -> list:
    return select(scenarios(sizes), names, "")


@pytest.mark.parametrize("sizes", [Sizes.default(), Sizes.full()])
def test_every_run_has_a_pace(sizes: Sizes) -> None:
    for scenario in scenarios(sizes):
        for variant in (*scenario.variants, *scenario.seeds):
            assert (scenario.name, variant.name) in PACES, (scenario.name, variant.name)


def test_estimate_is_near_a_measured_run() -> None:
    # results/2026-11-26-1746: these five scenarios, 300k rows, 3 repeats, took 348 s
    sizes = Sizes.default(300_000)
    names = "snapshot-pg,snapshot-sqlite,tap-alone,memory-4x,changes-pg"
    total = sum(estimate(chosen(sizes, names), specs(sizes), 3).values())
    assert 348 / 1.5 < total < 348 * 1.5


def test_setup_runs_are_counted_only_when_no_earlier_run_leaves_the_template() -> None:
    sizes = Sizes.default()
    alone = estimate(chosen(sizes, "changes-pg"), specs(sizes), 3)["changes-pg"]
    after = estimate(chosen(sizes, "snapshot-pg,changes-pg"), specs(sizes), 3)["changes-pg"]
    # the snapshot leaves both templates: the changes need no dap initdb of 100k rows
    assert alone - after > 10


def test_full_is_much_longer_and_described_in_minutes() -> None:
    every = ",".join(SCENARIO_NAMES)
    default = estimate(chosen(Sizes.default(), every), specs(Sizes.default()), 3)
    full = estimate(chosen(Sizes.full(), every), specs(Sizes.full()), 3)
    assert list(full) == list(SCENARIO_NAMES)
    assert sum(full.values()) > 2 * sum(default.values())
    assert full["memory-4x"] > 3 * default["memory-4x"]
    text = describe(full)
    assert re.fullmatch(r"bench: rough estimate ~[\d.]+ (min|h) \(snapshot-pg ~\d+ min, .*, "
                        r"tables-30 ~\d+ min\); venv set-up not included", text), text
