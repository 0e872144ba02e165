"""Crash and resume of a generation job: SIGKILL at seeded random points (after k finished problems plus a random
delay, sometimes with the journal's last line torn as by a kill mid-write), then a rerun. Every rerun must give the
Parquet of an uninterrupted run (timing columns aside): no lost and no duplicated rows.

The killed run is a forked child of the test process (torch and the model code are already imported there), so a
trial costs a second or two instead of a fresh interpreter's ~9 s of imports; the rerun runs in the test process.
tests/unit/test_generation_engine.py kills a fresh `python -c` job once, the way Snakemake runs it."""

from __future__ import annotations

import multiprocessing as mp
import os
import random
import signal
import time

import pyarrow.parquet as pq
import pytest

N_PROBLEMS = 16
BUDGETS = [16, 32]
GEN = dict(temperature=1.0, max_gen_toks=12, batch_size=4, dtype="float32", device="cpu")
TRIALS = 5
RNG_SEED = 20240607


def _generate(model_dir, bench, out):
    from prunetts import jobs

    jobs.generate(
        str(model_dir),
        str(bench),
        str(out),
        model="demo",
        variant="dense",
        bench="demo",
        seed=11,
        budgets=BUDGETS,
        generation=GEN,
        model_cfg={"delimiters": "s1"},
        threads=1,
        progress=False,
    )


def _child(model_dir, bench, out):
    # tqdm's write lock holds a multiprocessing semaphore shared with the parent across the fork: a child killed inside
    # a progress bar (transformers' "Loading weights") would leave it taken and hang the parent's next bar. The child
    # gets a lock of its own (on every tqdm class that may already hold one).
    import threading

    import tqdm.auto
    import tqdm.std

    for cls in {tqdm.std.tqdm, tqdm.auto.tqdm}:
        cls.set_lock(threading.RLock())
    _generate(model_dir, bench, out)
    os._exit(0)


def _table(path):
    return pq.read_table(path).drop_columns(["think_seconds", "answer_seconds"])


def _lines(path) -> int:
    try:
        with open(path, "rb") as f:
            return f.read().count(b"\n")
    except FileNotFoundError:
        return 0


@pytest.fixture(scope="module")
def setup(demo_model_dir, tmp_path_factory):
    import torch

    from prunetts import jobs

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # the forked children inherit a single-threaded torch (no OpenMP team to copy)
    work = tmp_path_factory.mktemp("crash")
    bench = work / "bench.parquet"
    jobs.prepare_benchmark(str(bench), bench="demo", options={"limit": N_PROBLEMS})
    whole = work / "whole.parquet"
    _generate(demo_model_dir, bench, whole)
    yield work, bench, _table(whole)
    torch.set_num_threads(threads)


def test_sigkill_at_random_points_then_resume_gives_the_uninterrupted_parquet(demo_model_dir, setup):
    from prunetts.generation.run import journal_path

    work, bench, whole = setup
    assert whole.num_rows == N_PROBLEMS * len(BUDGETS)
    provenance = {k: set(whole.column(k).to_pylist()) for k in ("model", "variant", "bench", "seed", "budget")}
    assert provenance == dict(model={"demo"}, variant={"dense"}, bench={"demo"}, seed={11}, budget=set(BUDGETS))
    rng = random.Random(RNG_SEED)
    fork = mp.get_context("fork")
    report = []
    for trial in range(TRIALS):
        out = work / f"trial{trial}.parquet"
        journal = journal_path(str(out))
        k = 0 if trial == 0 else rng.randrange(1, N_PROBLEMS - 4)  # finished problems before the kill
        delay = rng.uniform(0, 0.05)
        child = fork.Process(target=_child, args=(demo_model_dir, bench, out))
        child.start()
        deadline = time.time() + 120
        while time.time() < deadline and child.is_alive() and _lines(journal) < 1 + k:
            time.sleep(0.005)
        time.sleep(delay)
        assert child.is_alive(), f"trial {trial}: the job finished before the kill (k={k})"
        os.kill(child.pid, signal.SIGKILL)
        child.join(30)
        assert child.exitcode == -signal.SIGKILL and not out.exists()
        torn = 0
        if trial % 2:  # a kill in the middle of a write: the file ends inside its last line
            data = open(journal, "rb").read()
            last = data.rstrip(b"\n").rsplit(b"\n", 1)[-1]
            torn = rng.randrange(1, len(last))
            with open(journal, "r+b") as f:
                f.truncate(len(data) - 1 - torn)
        done = max(_lines(journal) - 1, 0)
        report.append((k, round(delay, 3), torn, done))

        _generate(demo_model_dir, bench, out)  # the rerun
        got = _table(out)
        keys = list(zip(got["problem_id"].to_pylist(), got["budget"].to_pylist(), strict=True))
        assert len(keys) == len(set(keys)) == N_PROBLEMS * len(BUDGETS), f"trial {trial}: lost or duplicated rows"
        assert got.equals(whole), f"trial {trial} (k, delay, torn bytes, journal lines) = {report[-1]}"
        assert _lines(journal) == 1 + N_PROBLEMS  # kept beside the Parquet, complete
    # the kills landed at different places: before any problem finished, part way, with and without a torn line
    print("trials (k, delay, torn bytes, journal lines):", report)
    assert len({r[3] for r in report}) >= 3, report
