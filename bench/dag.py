"""Times `snakemake -n` (parse the workflow, validate the config, build the DAG, check every output) on the paper's grid
(config/paper.yaml) and on a synthetic grid 10x larger (5x the models, 2x the seeds), side by side in one run.
Goal: the paper grid in <= 10 s.

    python bench/dag.py [--repeats 3]

Each dry run starts in an empty working directory (every job is needed), prints its job list to a pipe like a user's
terminal, and is timed from the process start, Python and Snakemake imports included (`snakemake --version` is
printed as that floor). Nothing is downloaded or computed.
"""

from __future__ import annotations

import argparse
import copy
import os
import platform
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]


def timed(cmd: list[str], cwd: Path) -> tuple[float, str]:
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        sys.exit(f"{' '.join(cmd)} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    return wall, proc.stdout + proc.stderr


def larger(cfg: dict, models: int = 5, seeds: int = 2) -> dict:
    """The paper grid with each model repeated `models` times (same checkpoint, other name) and `seeds`x the seeds."""
    big = copy.deepcopy(cfg)
    big["models"] = {f"{name}-{i}": spec for i in range(models) for name, spec in cfg["models"].items()}
    base = cfg["generation"]["seeds"]
    big["generation"]["seeds"] = base + [1000 + s for s in range(len(base) * (seeds - 1))]
    return big


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    sys.path.insert(0, str(REPO))  # the one parser of Snakemake's "Job stats" table lives with the workflow tests
    from tests.workflow.helpers import job_stats

    paper = yaml.safe_load((REPO / "config" / "paper.yaml").read_text())
    grids = {"paper (config/paper.yaml)": paper, "10x synthetic (5x models, 2x seeds)": larger(paper)}
    snakemake = [sys.executable, "-m", "snakemake", "--snakefile", str(REPO / "Snakefile")]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        floor = min(timed(snakemake + ["--version"], Path(tmp))[0] for _ in range(args.repeats))
        for name, cfg in grids.items():
            work = Path(tmp) / re.sub(r"\W+", "-", name)
            work.mkdir()
            (work / "config.yaml").write_text(yaml.safe_dump(cfg, sort_keys=False))
            walls, out = [], ""
            for _ in range(args.repeats):
                wall, out = timed(snakemake + ["--configfile", "config.yaml", "-n"], work)
                walls.append(wall)
            counts = job_stats(out)
            rows.append((name, counts["total"], counts.get("generate", 0), min(walls), statistics.median(walls)))

    cpu = platform.processor() or platform.machine()
    print(
        f"snakemake -n, empty working directory, {args.repeats} runs each; {platform.system()} {cpu}, "
        f"{os.cpu_count()} cores, Python {platform.python_version()}; `snakemake --version` alone: {floor:.1f} s"
    )
    print(
        f"{'grid':38s} {'jobs':>6s} {'generate':>9s} {'min s':>7s} {'median s':>9s} {'jobs ratio':>11s} "
        f"{'time ratio':>11s} {'ms/job':>7s}"
    )
    base_jobs, base_time = rows[0][1], rows[0][3]
    for name, jobs, gen, best, med in rows:
        print(
            f"{name:38s} {jobs:6d} {gen:9d} {best:7.1f} {med:9.1f} {jobs / base_jobs:11.2f} "
            f"{best / base_time:11.2f} {1000 * (best - floor) / jobs:7.2f}"
        )


if __name__ == "__main__":
    main()
