"""Workflow-level reliability, on two clean runs of the shipped demo (config/config.yaml: 101 jobs, every method,
allocation and stage) in two temporary directories (tests/workflow/conftest.py):

1. determinism: the grade and score tables of the two runs are byte-identical (and so are the intermediate artifacts,
   the pruned checkpoints, and the generations, timing columns aside);
2. crash: SIGKILL of the whole Snakemake process group while prune writes its checkpoint directory leaves an output
   that Snakemake marks incomplete; `--unlock` and `--rerun-incomplete` (what Snakemake advises) finish it, and the
   checkpoint equals the other run's byte for byte. The same kill during capture's layer-by-layer pass leaves no
   half-written table, and a rerun recomputes it identically;
3. corrupt input: a truncated grade table stops the aggregate job with one line naming the file; deleting the file
   and rerunning regenerates it, identical to the other run's.

Both runs use `--cores 1` (the same thread counts per job; see README, Determinism). Only the second run is changed
here, and every test restores it."""

from __future__ import annotations

import hashlib
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from tests.workflow.helpers import job_counts, snakemake, snakemake_command

pytestmark = pytest.mark.workflow

SCORES = "results/tables/scores.parquet"
CKPT = "results/models/model~demo/variant~wanda-uniform-s0.50"
PRUNE_LOG = "results/logs/prune/model~demo_variant~wanda-uniform-s0.50.log"
CAPTURE = "results/capture/model~demo"
CAPTURE_LOG = "results/logs/capture/model~demo.log"
GRADE = "results/grades/model~demo/variant~wanda-uniform-s0.50/bench~demo/seed~7.parquet"


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _digests(root: Path, pattern: str) -> dict[str, str]:
    return {str(p.relative_to(root)): _digest(p) for p in sorted(root.glob(pattern)) if p.is_file()}


@pytest.fixture(scope="module")
def runs(demo_runs):
    return demo_runs


def test_two_clean_runs_give_byte_identical_grade_and_score_tables(runs):
    a, b = runs
    for pattern in ("results/grades/**/*.parquet", "results/tables/*.parquet", "results/tables/summary.*"):
        da, db = _digests(a, pattern), _digests(b, pattern)
        assert da and da == db, pattern
    assert len(_digests(a, "results/grades/**/*.parquet")) == 30  # 15 variants x 2 seeds, one benchmark
    # upstream too: every artifact and checkpoint byte for byte; generations without their timing columns
    upstream = ("benchmarks", "calibration", "capture", "influence", "scores", "allocation", "sparsity", "models")
    for stage in upstream:
        da = _digests(a, f"results/{stage}/**/*")
        assert da and da == _digests(b, f"results/{stage}/**/*"), stage
    assert len(_digests(a, "results/models/**/model.safetensors")) == 14  # every pruned checkpoint
    timing = ["think_seconds", "answer_seconds"]
    generations = sorted(a.glob("results/generations/**/*.parquet"))
    assert len(generations) == 30
    for gen in generations:
        other = b / gen.relative_to(a)
        assert pq.read_table(gen).drop_columns(timing).equals(pq.read_table(other).drop_columns(timing)), gen


def _sigkill_while(work: Path, target: str, log: Path, running) -> None:
    """Start `snakemake TARGET` in WORK and SIGKILL its whole process group (Snakemake and its job, as a node failure
    or `kill -9 -PGID` would) as soon as `running()` is true, i.e. while the job is computing or writing."""
    cmd, env = snakemake_command(work, "--cores", "1", target, configfile=work / "config.yaml")
    quiet = dict(stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    proc = subprocess.Popen(cmd, cwd=work, env=env, start_new_session=True, **quiet)
    deadline = time.time() + 300
    while time.time() < deadline and proc.poll() is None:
        if log.is_file() and running():
            break
        time.sleep(0.01)
    assert proc.poll() is None, f"{target}: the job finished (or failed) before it could be killed"
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert any((work / ".snakemake" / "incomplete").iterdir()), "Snakemake did not mark the output incomplete"
    # the killed run's lock is still there (a rerun would stop with a LockException advising --unlock)
    assert any((work / ".snakemake" / "locks").iterdir())


def test_sigkill_during_prune_then_unlock_and_rerun_incomplete(runs):
    a, b = runs
    cfg = b / "config.yaml"
    ckpt, log = b / CKPT, b / PRUNE_LOG
    shutil.rmtree(ckpt)  # the pruned checkpoint is rebuilt, then killed while it is being written
    _sigkill_while(b, CKPT, log, lambda: ckpt.is_dir() and "prune (" in log.read_text(errors="replace"))
    assert ckpt.is_dir(), "the kill should leave the partly written checkpoint directory"

    # what a user meets, in order, each time with Snakemake's advice for the next step
    again = snakemake(b, "--cores", "1", CKPT, configfile=cfg, check=False)
    text = again.stdout + again.stderr
    assert again.returncode != 0 and "IncompleteFilesException" in text and "--rerun-incomplete" in text, text
    assert CKPT in text
    snakemake(b, "--unlock", configfile=cfg)
    done = snakemake(b, "--cores", "1", "--rerun-incomplete", CKPT, configfile=cfg)
    assert job_counts(done) == {"prune": 1}
    assert _digests(b, f"{CKPT}/*") == _digests(a, f"{CKPT}/*")  # the rebuilt checkpoint is complete and identical
    # The checkpoint is newer than its generations now (and over Snakemake's 1 MB checksum limit, so judged by
    # mtime): a full run would regenerate them. It is byte-identical, so `--touch` is right, as for a user.
    assert job_counts(snakemake(b, "-n", configfile=cfg))["generate"] == 2
    snakemake(b, "--touch", "--cores", "1", configfile=cfg)
    assert job_counts(snakemake(b, "-n", configfile=cfg)) == {}


def test_sigkill_during_capture_leaves_no_partial_table_and_a_rerun_recovers(runs):
    """Capture writes its two tables only at the end, each atomically (temporary name, then rename): a kill during
    the layer-by-layer pass leaves Snakemake's incomplete markers and a lock, never a half-written table under an
    output name, and after --unlock a plain rerun recomputes both, byte-identical to the other run's."""
    a, b = runs
    cfg = b / "config.yaml"
    outputs = [b / CAPTURE / name for name in ("linear_stats.parquet", "layer_stats.parquet")]
    log = b / CAPTURE_LOG
    for f in outputs:
        f.unlink()
    log.unlink()  # the bar of the killed run is then the only one in the log
    _sigkill_while(b, str(outputs[0].relative_to(b)), log, lambda: "capture:" in log.read_text(errors="replace"))
    assert not any(f.exists() for f in outputs), "an output table exists although capture was killed mid-pass"

    snakemake(b, "--unlock", configfile=cfg)
    done = snakemake(b, "--cores", "1", *(str(f.relative_to(b)) for f in outputs), configfile=cfg)
    assert job_counts(done) == {"capture": 1}
    assert _digests(b, f"{CAPTURE}/*") == _digests(a, f"{CAPTURE}/*")


def test_corrupt_grade_table_is_named_and_regenerated_after_deletion(runs):
    a, b = runs
    cfg = b / "config.yaml"
    grade = b / GRADE
    assert job_counts(snakemake(b, "-n", configfile=cfg)) == {}  # the other tests left the run complete
    grade.write_bytes(grade.read_bytes()[: grade.stat().st_size // 2])  # truncated (a full disk, a bad copy)
    (b / SCORES).unlink()  # so that the aggregate job runs and reads it
    failed = snakemake(b, "--cores", "1", SCORES, configfile=cfg, check=False)
    text = failed.stdout + failed.stderr
    assert failed.returncode != 0
    ours = [line for line in text.splitlines() if line.startswith("prunetts error:")]
    assert len(ours) == 1, text
    assert f"{GRADE}: unreadable grades artifact" in ours[0] and "delete it and rerun" in ours[0]
    assert "Traceback (most recent call last)" not in text

    grade.unlink()
    done = snakemake(b, "--cores", "1", SCORES, configfile=cfg)
    assert job_counts(done) == {"grade": 1, "aggregate": 1}
    assert _digest(grade) == _digest(a / GRADE)
    assert _digest(b / SCORES) == _digest(a / SCORES)
