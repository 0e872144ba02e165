"""The micro demo end to end in a temporary directory, then the rerun semantics users rely on."""

import pytest
import torch
from prunetts import artifacts

from tests.workflow.helpers import job_counts, micro_config, snakemake, write_config

pytestmark = pytest.mark.workflow


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    work = tmp_path_factory.mktemp("e2e")
    cfg = micro_config()
    path = write_config(work, cfg)
    snakemake(work, "--cores", "2", configfile=path)
    return work, cfg


def test_outputs_exist_and_are_consistent(run):
    work, cfg = run
    scores = artifacts.read("scores", work / "results/tables/scores.parquet").to_pandas()
    assert len(scores) == 3 * 1 * 3  # variants x seeds x budgets
    assert set(scores["variant"]) == {"dense", "magnitude-uniform-s0.50", "wanda-uniform-s0.50"}
    assert (scores["n_problems"] == 12).all()
    assert (work / "results/tables/summary.md").read_text().count("| dense |") == 1
    assert (work / "results/figures/accuracy_vs_budget/model~demo_bench~demo.png").stat().st_size > 10_000
    dense = scores[scores["variant"] == "dense"].set_index("budget")
    # the demo's test-time scaling: the largest budget beats the smallest
    assert dense.loc[256, "accuracy"] > dense.loc[16, "accuracy"]
    gens = work / "results/generations/model~demo/variant~dense/bench~demo/seed~7.parquet"
    for r in artifacts.read("generations", gens).to_pylist():
        assert r["thinking_tokens"] <= r["budget"]


def test_pruned_checkpoint_reloads_with_recorded_zero_count(run):
    work, _ = run
    from transformers import AutoModelForCausalLM

    for variant in ("magnitude-uniform-s0.50", "wanda-uniform-s0.50"):
        ckpt = work / f"results/models/model~demo/variant~{variant}"
        model = AutoModelForCausalLM.from_pretrained(ckpt, dtype=torch.float32)
        rec = artifacts.read("sparsity", work / f"results/sparsity/model~demo/variant~{variant}.parquet").to_pylist()
        assert len(rec) == 7 * model.config.num_hidden_layers
        for r in rec:
            w = model.get_submodule(f"model.layers.{r['layer']}.{r['module']}").weight
            assert int((w == 0).sum()) == r["n_zero"]
            assert r["realized_sparsity"] == pytest.approx(r["n_zero"] / r["numel"])
            assert r["realized_sparsity"] >= 0.5 - 1 / w.shape[1]


def test_immediate_rerun_does_nothing(run):
    work, _ = run
    proc = snakemake(work, "-n", configfile=work / "config.yaml")
    assert job_counts(proc) == {}, proc.stdout


def test_budget_change_reruns_only_generation_and_downstream(run):
    work, cfg = run
    cfg2 = micro_config(generation={"budgets": [16, 32, 64, 256]})
    path = write_config(work / "alt", cfg2) if (work / "alt").mkdir() is None else None
    counts = job_counts(snakemake(work, "-n", configfile=path))
    assert set(counts) == {"generate", "grade", "aggregate", "plot_accuracy", "all"}
    assert counts["generate"] == 3 and counts["grade"] == 3


def test_unrelated_grading_edit_does_not_rerun_generation(run):
    work, _ = run
    (work / "alt2").mkdir()
    path = write_config(work / "alt2", micro_config(grading={"timeout_s": 7}))
    counts = job_counts(snakemake(work, "-n", configfile=path))
    assert "generate" not in counts and "prune" not in counts and "capture" not in counts
    assert counts["grade"] == 3
