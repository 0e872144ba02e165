"""A model given as a hub id pinned to a revision: the workflow loads that commit's weights and tokenizer from the
Hugging Face cache (offline here, as on a cluster's compute nodes), each job's log names the commit, and pinning
another revision reruns exactly the model's jobs."""

from __future__ import annotations

import pytest

from prunetts.cli import main as cli
from tests.conftest import fake_hub, perturbed_copy
from tests.workflow.helpers import DEMO_MODEL, job_counts, micro_config, snakemake, write_config

pytestmark = pytest.mark.workflow

MAIN = "0123456789abcdef0123456789abcdef01234567"
PINNED = "fedcba9876543210fedcba9876543210fedcba98"
VARIANT = "magnitude-uniform-s0.50"
TARGETS = (
    f"results/models/model~demo/variant~{VARIANT}",
    "results/calibration/model~demo.parquet",  # the tokenizer alone, at the revision
    "results/generations/model~demo/variant~dense/bench~demo/seed~7.parquet",  # the dense model, at the revision
)


def _config(revision: str | None) -> dict:
    model = {"path": "org/demo", "delimiters": "s1", **({"revision": revision} if revision else {})}
    return micro_config(
        models={"demo": model},
        benchmarks={"demo": {"limit": 4}},
        pruning={"methods": ["magnitude"], "allocations": ["uniform"], "sparsities": [0.5]},
    )


def test_pinned_revision_loads_that_commit_and_a_new_one_reruns_the_models_jobs(tmp_path):
    later = perturbed_copy(DEMO_MODEL, tmp_path / "later")  # a newer commit of the same model: other weights
    cache = fake_hub(tmp_path / "hub", "org/demo", {MAIN: DEMO_MODEL, PINNED: later}, main=MAIN)
    env = {"HF_HUB_CACHE": str(cache)}
    work = tmp_path / "work"
    work.mkdir()
    config = write_config(work, _config(PINNED))
    snakemake(work, "--cores", "2", *TARGETS, configfile=config, extra_env=env)

    # the pinned commit's weights were pruned, not the default branch's
    reference = tmp_path / "reference"
    args = ["prune", "--model", str(later), "--method", "magnitude", "--sparsity", "0.5", "--out", str(reference)]
    assert cli(args) == 0
    pruned = work / TARGETS[0] / "model.safetensors"
    assert pruned.read_bytes() == (reference / "model.safetensors").read_bytes()
    logs = (
        "prepare_calibration/model~demo",  # the tokenizer's snapshot, fetched without the weights
        f"allocate/model~demo_variant~{VARIANT}",
        f"prune/model~demo_variant~{VARIANT}",
        "generate/model~demo_variant~dense_bench~demo_seed~7",
    )
    for log in logs:
        assert f"org/demo at revision {PINNED}: hub commit {PINNED}" in (work / f"results/logs/{log}.log").read_text()

    # the same pin: nothing to do; another pin (or none, the default branch): the model's jobs again, nothing else
    assert job_counts(snakemake(work, "-n", *TARGETS, configfile=config, extra_env=env)) == {}
    model_jobs = {"prepare_calibration": 1, "allocate": 1, "prune": 1, "generate": 1}
    for revision in (MAIN, None):
        config = write_config(work, _config(revision))
        assert job_counts(snakemake(work, "-n", *TARGETS, configfile=config, extra_env=env)) == model_jobs
