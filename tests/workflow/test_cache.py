"""Between-workflow caching: two workflows in two directories share one output cache (`cache: True` rules,
`SNAKEMAKE_OUTPUT_CACHE=DIR snakemake --cache`); the second takes calibration, capture and layer scores from it."""

from __future__ import annotations

import os

import pytest

from tests.conftest import bench_file
from tests.workflow.helpers import micro_config, snakemake, write_config

pytestmark = pytest.mark.workflow

CAPTURE = ("results/capture/model~demo/linear_stats.parquet", "results/capture/model~demo/layer_stats.parquet")
SCORES = "results/scores/model~demo/scorer~owl.parquet"
ALLOCATION = "results/allocation/model~demo/variant~magnitude-owl-s0.50.parquet"  # not cached: computed in both
CACHED_RULES = ("prepare_calibration", "capture", "layer_scores")


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("cache")
    cache = root / "cache"
    cache.mkdir()
    cfg = micro_config(pruning={"methods": ["magnitude"], "allocations": ["owl"]})
    procs = {}
    for name in ("first", "second"):
        work = root / name
        work.mkdir()
        procs[name] = snakemake(
            work,
            "--cores",
            "2",
            ALLOCATION,  # the target (after an option: --configfile before it takes several files)
            "--cache",  # last: it takes rule names after it
            configfile=write_config(work, cfg),
            extra_env={"SNAKEMAKE_OUTPUT_CACHE": str(cache)},
        )
    return root, cache, procs


def test_first_workflow_computes_and_fills_the_cache(runs):
    root, cache, procs = runs
    first = root / "first"
    out = procs["first"].stdout + procs["first"].stderr
    for rule in CACHED_RULES:
        assert f"rule {rule}:" in out, rule
    assert f"Moving output file {CAPTURE[0]} to cache" in out
    assert (first / "results/logs/capture/model~demo.log").exists()
    for path in (*CAPTURE, SCORES):
        assert (first / path).is_symlink() and (first / path).resolve().is_relative_to(cache.resolve()), path


def test_second_workflow_takes_capture_from_the_cache(runs):
    root, cache, procs = runs
    first, second = root / "first", root / "second"
    out = procs["second"].stdout + procs["second"].stderr
    # no capture ran: Snakemake symlinked the outputs from the cache, and the logs it created stayed empty
    for path in (*CAPTURE, SCORES, "results/calibration/model~demo.parquet"):
        assert f"Symlinking output file {path} from cache" in out, out
    assert (first / "results/logs/capture/model~demo.log").stat().st_size > 0  # capture's progress bar
    assert (second / "results/logs/capture/model~demo.log").stat().st_size == 0
    assert (second / "results/logs/prepare_calibration/model~demo.log").stat().st_size == 0
    for path in (*CAPTURE, SCORES, "results/calibration/model~demo.parquet"):
        assert (second / path).resolve() == (first / path).resolve(), path  # the same cache entry
        assert (second / path).read_bytes() == (first / path).read_bytes(), path
    # the uncached downstream job ran in both and agrees
    assert (second / "results/logs/allocate/model~demo_variant~magnitude-owl-s0.50.log").exists()
    assert (second / ALLOCATION).read_bytes() == (first / ALLOCATION).read_bytes()
    # one entry per output of the three cached jobs, named by the job's provenance hash (+ the multiext suffixes)
    assert len(os.listdir(cache)) == 1 + len(CAPTURE) + 1


def test_each_model_name_gets_its_own_cache_entry(tmp_path):
    """Snakemake's cache key covers a job's params and inputs, not its wildcards; the cached rules pass theirs as
    params. Two model names for one checkpoint must not share an entry (the second would get rows labelled with the
    first's name), nor, likewise, two benchmarks with the same options."""
    from prunetts import artifacts

    cache, work = tmp_path / "cache", tmp_path / "work"
    cache.mkdir()
    work.mkdir()
    cfg = micro_config()
    cfg["models"]["demo_b"] = dict(cfg["models"]["demo"])
    # two benchmarks reading one file with the same options (the AMC loader reads AIME's fields too)
    same = {"source": str(bench_file("aime24.jsonl")), "limit": 5}
    cfg["benchmarks"] = {"aime24": dict(same), "amc23": dict(same)}
    targets = [f"results/calibration/model~{m}.parquet" for m in ("demo", "demo_b")]
    benches = [f"results/benchmarks/bench~{b}.parquet" for b in ("aime24", "amc23")]
    proc = snakemake(
        work,
        "--cores",
        "1",
        *targets,
        *benches,
        "--cache",
        configfile=write_config(work, cfg),
        extra_env={"SNAKEMAKE_OUTPUT_CACHE": str(cache)},
    )
    out = proc.stdout + proc.stderr
    assert all(f"Moving output file {target} to cache" in out for target in targets)  # both computed
    for model, target in zip(("demo", "demo_b"), targets, strict=True):
        assert {r["model"] for r in artifacts.read("calibration", work / target).to_pylist()} == {model}
    assert all(f"Moving output file {target} to cache" in out for target in benches)
    for bench, target in zip(("aime24", "amc23"), benches, strict=True):
        assert {r["bench"] for r in artifacts.read("benchmark", work / target).to_pylist()} == {bench}
    assert len(os.listdir(cache)) == 4
