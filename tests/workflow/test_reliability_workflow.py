"""Workflow-level reliability, on two clean runs of a reduced micro config (one variant, wanda-uniform-s0.50:
benchmark, calibration windows, allocation, sequential Wanda through the layer-by-layer pass that capture also uses,
generation, grading, aggregation) in two temporary directories:

1. determinism: the grade and score tables of the two runs are byte-identical (and so are the intermediate artifacts
   and the generations, timing columns aside);
2. crash: SIGKILL of the whole Snakemake process group while prune writes its checkpoint directory leaves an output
   that Snakemake marks incomplete; `--unlock` and `--rerun-incomplete` (what Snakemake advises) finish it, and the
   checkpoint equals the other run's byte for byte;
3. corrupt input: a truncated grade table stops the aggregate job with one line naming the file; deleting the file
   and rerunning regenerates it, identical to the other run's.

The full micro grid (dense + 7 pruned variants, 43 jobs) would take about five times as long as these 7 jobs. Both
runs use `--cores 1` (the same thread counts per job; see README, Determinism)."""

from __future__ import annotations

import hashlib
import os
import shutil
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from tests.workflow.helpers import REPO, job_counts, micro_config, snakemake, write_config
from tests.workflow.test_bad_configs import no_slurm_probe  # noqa: F401 - fixture

pytestmark = pytest.mark.workflow

CFG = micro_config(
    pruning={"include_dense": False, "methods": ["wanda"], "allocations": ["uniform"], "sparsities": [0.5]}
)
SCORES = "results/tables/scores.parquet"
CKPT = "results/models/model~demo/variant~wanda-uniform-s0.50"
PRUNE_LOG = "results/logs/prune/model~demo_variant~wanda-uniform-s0.50.log"
GRADE = "results/grades/model~demo/variant~wanda-uniform-s0.50/bench~demo/seed~7.parquet"


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _digests(root: Path, pattern: str) -> dict[str, str]:
    return {str(p.relative_to(root)): _digest(p) for p in sorted(root.glob(pattern)) if p.is_file()}


@pytest.fixture(scope="module")
def runs(tmp_path_factory, no_slurm_probe):  # noqa: F811
    dirs = [tmp_path_factory.mktemp(name) for name in ("run_a", "run_b")]

    def run(work):
        path = write_config(work, CFG)
        t0 = time.perf_counter()
        snakemake(work, "--cores", "1", SCORES, configfile=path)
        return time.perf_counter() - t0

    with ThreadPoolExecutor(2) as pool:
        times = list(pool.map(run, dirs))
    print(f"two clean runs, concurrently: {times[0]:.0f}s and {times[1]:.0f}s")
    return dirs


def test_two_clean_runs_give_byte_identical_grade_and_score_tables(runs):
    a, b = runs
    for pattern in ("results/grades/**/*.parquet", "results/tables/*.parquet", "results/tables/summary.*"):
        da, db = _digests(a, pattern), _digests(b, pattern)
        assert da and da == db, pattern
    assert len(_digests(a, "results/grades/**/*.parquet")) == 1  # one variant, one seed, one benchmark
    # upstream too: every artifact and checkpoint byte for byte; generations without their timing columns
    upstream = ("results/benchmarks/*", "results/calibration/*", "results/allocation/**/*", "results/sparsity/**/*")
    for pattern in upstream:
        assert _digests(a, pattern) == _digests(b, pattern), pattern
    assert _digests(a, f"{CKPT}/*") == _digests(b, f"{CKPT}/*")
    timing = ["think_seconds", "answer_seconds"]
    for gen in sorted(a.glob("results/generations/**/*.parquet")):
        other = b / gen.relative_to(a)
        assert pq.read_table(gen).drop_columns(timing).equals(pq.read_table(other).drop_columns(timing)), gen


def test_sigkill_during_prune_then_unlock_and_rerun_incomplete(runs):
    a, b = runs
    cfg = b / "config.yaml"
    ckpt, log = b / CKPT, b / PRUNE_LOG
    shutil.rmtree(ckpt)  # the pruned checkpoint is rebuilt, then killed while it is being written
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    cmd = [sys.executable, "-m", "snakemake", "--snakefile", str(REPO / "Snakefile"), "--directory", str(b)]
    cmd += ["--configfile", str(cfg), "--cores", "1", CKPT]
    quiet = dict(stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    proc = subprocess.Popen(cmd, cwd=b, env=env, start_new_session=True, **quiet)
    deadline = time.time() + 300
    while time.time() < deadline and proc.poll() is None:
        if ckpt.is_dir() and log.is_file() and "prune (" in log.read_text(errors="replace"):
            break
        time.sleep(0.01)
    assert proc.poll() is None, "prune finished (or failed) before it could be killed"
    os.killpg(proc.pid, signal.SIGKILL)  # Snakemake and its job, as a node failure or `kill -9 -PGID` would
    proc.wait()
    assert ckpt.is_dir(), "the kill should leave the partly written checkpoint directory"
    assert any((b / ".snakemake" / "incomplete").iterdir()), "Snakemake did not mark the output incomplete"

    # what a user meets, in order, each time with Snakemake's advice for the next step
    again = snakemake(b, "--cores", "1", CKPT, configfile=cfg, check=False)
    text = again.stdout + again.stderr
    assert again.returncode != 0 and "IncompleteFilesException" in text and "--rerun-incomplete" in text, text
    assert CKPT in text
    # the killed run's lock is still there (a rerun would stop with a LockException advising --unlock)
    assert any((b / ".snakemake" / "locks").iterdir())
    snakemake(b, "--unlock", configfile=cfg)
    done = snakemake(b, "--cores", "1", "--rerun-incomplete", CKPT, configfile=cfg)
    assert job_counts(done) == {"prune": 1}
    assert _digests(b, f"{CKPT}/*") == _digests(a, f"{CKPT}/*")  # the rebuilt checkpoint is complete and identical


def test_corrupt_grade_table_is_named_and_regenerated_after_deletion(runs):
    a, b = runs
    cfg = a / "config.yaml"
    grade = a / GRADE
    grade.write_bytes(grade.read_bytes()[: grade.stat().st_size // 2])  # truncated (a full disk, a bad copy)
    (a / SCORES).unlink()  # so that the aggregate job runs and reads it
    failed = snakemake(a, "--cores", "1", SCORES, configfile=cfg, check=False)
    text = failed.stdout + failed.stderr
    assert failed.returncode != 0
    ours = [line for line in text.splitlines() if line.startswith("prunetts error:")]
    assert len(ours) == 1, text
    assert f"{GRADE}: unreadable grades artifact" in ours[0] and "delete it and rerun" in ours[0]
    assert "Traceback (most recent call last)" not in text

    grade.unlink()
    done = snakemake(a, "--cores", "1", SCORES, configfile=cfg)
    assert job_counts(done) == {"grade": 1, "aggregate": 1}
    assert _digest(grade) == _digest(b / GRADE)
    assert _digest(a / SCORES) == _digest(b / SCORES)
