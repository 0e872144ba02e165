"""Fixtures shared by the workflow tests: two clean runs of the shipped demo (the README's main job)."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.workflow.helpers import demo_config, snakemake, write_config


@pytest.fixture(scope="session")
def demo_runs(tmp_path_factory):
    """`snakemake` on config/config.yaml (only the model path made absolute) in two empty directories, concurrently,
    `--cores 1` each so that both use the same thread count per job (README, Determinism). Tests may read both;
    only tests/workflow/test_reliability_workflow.py changes anything, and only in the second, restoring it."""
    dirs = [tmp_path_factory.mktemp(name) for name in ("demo_a", "demo_b")]

    def run(work):
        t0 = time.perf_counter()
        snakemake(work, "--cores", "1", configfile=write_config(work, demo_config()), timeout=3600)
        return time.perf_counter() - t0

    with ThreadPoolExecutor(2) as pool:
        times = list(pool.map(run, dirs))
    print(f"two clean demo runs, concurrently: {times[0]:.0f}s and {times[1]:.0f}s")
    return dirs
