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
    variants = {"dense", "shortgpt-s0.50"} | {
        f"{m}-{a}-s0.50" for m in ("magnitude", "wanda") for a in ("uniform", "owl", "layerif")
    }
    assert set(scores["variant"]) == variants
    assert len(scores) == len(variants) * 1 * 3  # variants x seeds x budgets
    assert (work / "results/figures/layer_sparsity/model~demo.png").stat().st_size > 10_000
    assert (scores["n_problems"] == 12).all()
    assert (work / "results/tables/summary.md").read_text().count("| dense |") == 1
    for figure in ("accuracy_vs_budget", "diff_vs_dense", "thinking_tokens"):
        assert (work / f"results/figures/{figure}/model~demo_bench~demo.png").stat().st_size > 10_000, figure
    st = artifacts.read("stats", work / "results/tables/stats.parquet").to_pandas()
    assert len(st) == len(variants) * 3 and (st["n_seeds"] == 1).all() and (st["n_problems"] == 12).all()
    merged = st.merge(scores, on=["model", "variant", "bench", "budget"])
    assert (merged["accuracy_mean"] - merged["accuracy"]).abs().max() < 1e-12
    assert (merged["accuracy_ci_low"] <= merged["accuracy"]).all() and (
        merged["accuracy"] <= merged["accuracy_ci_high"]
    ).all()
    assert st.loc[st["variant"] != "dense", "diff_p_value"].between(0, 1).all()
    assert "<table>" in (work / "results/tables/summary.html").read_text()
    dense = scores[scores["variant"] == "dense"].set_index("budget")
    # the demo's test-time scaling: the largest budget beats the smallest
    assert dense.loc[256, "accuracy"] > dense.loc[16, "accuracy"]
    gens = work / "results/generations/model~demo/variant~dense/bench~demo/seed~7.parquet"
    for r in artifacts.read("generations", gens).to_pylist():
        assert r["thinking_tokens"] <= r["budget"]


def test_pruned_checkpoint_reloads_with_recorded_zero_count(run):
    work, _ = run
    from transformers import AutoModelForCausalLM

    for variant in ("magnitude-uniform-s0.50", "wanda-uniform-s0.50", "wanda-owl-s0.50", "magnitude-layerif-s0.50"):
        ckpt = work / f"results/models/model~demo/variant~{variant}"
        model = AutoModelForCausalLM.from_pretrained(ckpt, dtype=torch.float32)
        rec = artifacts.read("sparsity", work / f"results/sparsity/model~demo/variant~{variant}.parquet").to_pylist()
        assert len(rec) == 7 * model.config.num_hidden_layers
        for r in rec:
            w = model.get_submodule(f"model.layers.{r['layer']}.{r['module']}").weight
            assert int((w == 0).sum()) == r["n_zero"]
            assert r["realized_sparsity"] == pytest.approx(r["n_zero"] / r["numel"])
            assert r["realized_sparsity"] >= r["target_sparsity"] - 1 / w.shape[1]
        total = sum(r["n_zero"] for r in rec) / sum(r["numel"] for r in rec)
        assert total == pytest.approx(0.5, abs=0.01)


def test_shortgpt_checkpoint_has_fewer_layers(run):
    work, _ = run
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(work / "results/models/model~demo/variant~shortgpt-s0.50")
    assert model.config.num_hidden_layers == 3  # round(0.5 * 6) removed
    alloc = artifacts.read("allocation", work / "results/allocation/model~demo/variant~shortgpt-s0.50.parquet")
    removed = sorted({r["layer"] for r in alloc.to_pylist() if r["sparsity"] == 1.0})
    bi = artifacts.read("layer_scores", work / "results/scores/model~demo/scorer~bi.parquet").to_pylist()
    lowest = sorted(sorted(range(5), key=lambda i: bi[i]["score"])[:3])  # last layer (5) is never a candidate
    assert removed == lowest


def test_html_report_holds_the_figures_and_the_summary(run):
    work, _ = run
    report = work / "results" / "report.html"
    snakemake(work, "--report", str(report), configfile=work / "config.yaml")
    text = report.read_text()
    assert report.stat().st_size > 100_000
    for category in ("Summary", "Accuracy vs budget", "Difference vs dense", "Thinking length", "Per-layer sparsity"):
        assert category in text, category
    for name in ("model~demo_bench~demo.png", "model~demo.png", "summary.html", "summary.csv"):
        assert name in text, name
    assert text.count("data:image/png;") >= 4  # the four figures are embedded (base64 data URIs)
    assert "sign-flip test" in text  # a caption


def test_immediate_rerun_does_nothing(run):
    work, _ = run
    proc = snakemake(work, "-n", configfile=work / "config.yaml")
    assert job_counts(proc) == {}, proc.stdout


def test_budget_change_reruns_only_generation_and_downstream(run):
    work, cfg = run
    cfg2 = micro_config(generation={"budgets": [16, 32, 64, 256]})
    path = write_config(work / "alt", cfg2) if (work / "alt").mkdir() is None else None
    counts = job_counts(snakemake(work, "-n", configfile=path))
    assert set(counts) == {"generate", "grade", "aggregate", "plot_accuracy", "plot_diff", "plot_thinking", "all"}
    assert counts["generate"] == 8 and counts["grade"] == 8


def test_unrelated_grading_edit_does_not_rerun_generation(run):
    work, _ = run
    (work / "alt2").mkdir()
    path = write_config(work / "alt2", micro_config(grading={"timeout_s": 7}))
    counts = job_counts(snakemake(work, "-n", configfile=path))
    assert "generate" not in counts and "prune" not in counts and "capture" not in counts
    assert counts["grade"] == 8


def test_owl_knob_reruns_only_owl_variants(run):
    work, _ = run
    (work / "alt3").mkdir()
    path = write_config(work / "alt3", micro_config(pruning={"owl": {"m": 5, "lambda": 0.08}}))
    counts = job_counts(snakemake(work, "-n", configfile=path))
    assert counts["layer_scores"] == 1 and counts["allocate"] == 2 and counts["prune"] == 2
    assert counts["generate"] == 2 and "capture" not in counts and "influence" not in counts
