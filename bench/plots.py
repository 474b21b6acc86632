"""PNG plots from a results JSON; runs in the bench's plot venv (matplotlib lives only there).

    bench/work/venvs/plot/bin/python bench/plots.py RESULTS.json OUT_PREFIX
writes OUT_PREFIX-throughput.png and OUT_PREFIX-memory.png and prints their paths.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

COLOURS = {"ours": "#1f77b4", "anchor": "#d62728", "proxy": "#7f7f7f"}


def _labels(summaries: list[dict]) -> list[str]:
    return [f"{s['scenario']}: {s['variant']}" for s in summaries]


def throughput(summaries: list[dict], path: Path) -> None:
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(10, 0.45 * len(summaries) + 1.5))
    values = [s["rows_per_second"] for s in summaries]
    ax.barh(_labels(summaries), values, color=[COLOURS[s["kind"]] for s in summaries])
    ax.set_xscale("log")
    ax.invert_yaxis()
    ax.set_xlabel("rows/s (median, log scale)")
    for y, value in enumerate(values):
        ax.text(value, y, f" {value:,.0f}", va="center", fontsize=8)
    handles = [plt.Rectangle((0, 0), 1, 1, color=c) for c in COLOURS.values()]
    ax.legend(handles, COLOURS.keys(), loc="lower right")
    ax.set_title("Throughput per scenario and variant")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def memory(summaries: list[dict], path: Path) -> None:
    import matplotlib.pyplot as plt

    roles = sorted({role for s in summaries for role in s["peak_rss"]})
    fig, ax = plt.subplots(figsize=(10, 0.45 * len(summaries) * max(1, len(roles) / 2) + 1.5))
    height = 0.8 / len(roles)
    cmap = plt.get_cmap("tab10")
    for index, role in enumerate(roles):
        ys = [y + index * height for y in range(len(summaries))]
        values = [s["peak_rss"].get(role, 0) / 2**20 for s in summaries]
        ax.barh(ys, values, height=height, label=role, color=cmap(index))
    ax.set_yticks([y + 0.4 - height / 2 for y in range(len(summaries))], _labels(summaries))
    ax.invert_yaxis()
    ax.set_xlabel("peak RSS per process (MB, median)")
    ax.legend(loc="lower right")
    ax.set_title("Peak memory per process")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv: list[str]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    results, prefix = Path(argv[0]), argv[1]
    summaries = json.loads(results.read_text())["summaries"]
    for name, draw in (("throughput", throughput), ("memory", memory)):
        path = Path(f"{prefix}-{name}.png")
        draw(summaries, path)
        print(path)


if __name__ == "__main__":
    main(sys.argv[1:])
