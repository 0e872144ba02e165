"""The shipped demo (config/config.yaml, the README's main job) end to end in a temporary directory, then the rerun
semantics users rely on (dry runs against the finished run)."""

import json

import pytest
import torch

from prunetts import artifacts
from tests.workflow.helpers import demo_config, job_counts, snakemake, write_config

pytestmark = pytest.mark.workflow


@pytest.fixture(scope="module")
def run(demo_runs):
    return demo_runs[0], demo_config()


def _variants(cfg) -> set[str]:
    p = cfg["pruning"]
    sp = [f"s{s:.2f}" for s in p["sparsities"]]
    unstructured = {f"{m}-{a}-{s}" for m in ("magnitude", "wanda") for a in p["allocations"] for s in sp}
    return {"dense"} | {f"shortgpt-{s}" for s in sp} | unstructured


def test_outputs_exist_and_are_consistent(run):
    work, cfg = run
    scores = artifacts.read("scores", work / "results/tables/scores.parquet").to_pandas()
    variants = _variants(cfg)
    assert len(variants) == 15
    n_seeds, n_budgets, n_problems = len(cfg["generation"]["seeds"]), len(cfg["generation"]["budgets"]), 80
    assert set(scores["variant"]) == variants
    assert len(scores) == len(variants) * n_seeds * n_budgets
    assert (work / "results/figures/layer_sparsity/model~demo.png").stat().st_size > 10_000
    assert (scores["n_problems"] == n_problems).all()
    assert (work / "results/tables/summary.md").read_text().count("| dense |") == 1
    for figure in ("accuracy_vs_budget", "diff_vs_dense", "thinking_tokens"):
        assert (work / f"results/figures/{figure}/model~demo_bench~demo.png").stat().st_size > 10_000, figure
    st = artifacts.read("stats", work / "results/tables/stats.parquet").to_pandas()
    assert len(st) == len(variants) * n_budgets
    assert (st["n_seeds"] == n_seeds).all() and (st["n_problems"] == n_problems).all()
    mean = scores.groupby(["model", "variant", "bench", "budget"], as_index=False)["accuracy"].mean()
    merged = st.merge(mean, on=["model", "variant", "bench", "budget"])
    assert len(merged) == len(st)
    assert (merged["accuracy_mean"] - merged["accuracy"]).abs().max() < 1e-12
    assert (merged["accuracy_ci_low"] <= merged["accuracy"]).all() and (
        merged["accuracy"] <= merged["accuracy_ci_high"]
    ).all()
    assert st.loc[st["variant"] != "dense", "diff_p_value"].between(0, 1).all()
    assert "<table>" in (work / "results/tables/summary.html").read_text()
    dense = mean[mean["variant"] == "dense"].set_index("budget")["accuracy"]
    # the demo's test-time scaling (README): the dense model gains a lot from the smallest to the largest budget
    assert dense.loc[256] > dense.loc[16] + 0.5
    for seed in cfg["generation"]["seeds"]:
        gens = work / f"results/generations/model~demo/variant~dense/bench~demo/seed~{seed}.parquet"
        rows = artifacts.read("generations", gens).to_pylist()
        assert len(rows) == n_problems * n_budgets
        assert all(r["thinking_tokens"] <= r["budget"] for r in rows)


def test_pruned_checkpoint_reloads_with_recorded_zero_count(run):
    work, cfg = run
    from snakemake.utils import validate
    from transformers import AutoModelForCausalLM

    from prunetts.config import prune_settings
    from tests.workflow.helpers import REPO

    config = json.loads(json.dumps(cfg))
    validate(config, str(REPO / "workflow" / "schemas" / "config.schema.yaml"))  # the defaults, as the jobs see it

    variants = ("magnitude-uniform-s0.50", "wanda-uniform-s0.50", "wanda-owl-s0.30", "magnitude-layerif-s0.30")
    for variant in variants:
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
        assert total == pytest.approx(float(variant[-4:]), abs=0.01)
        # copied out of results/, the checkpoint still says what it is, as a `prunetts prune` one does
        assert artifacts.read("sparsity", ckpt / "prunetts_sparsity.parquet").to_pylist() == rec
        summary = json.loads((ckpt / "prunetts_prune.json").read_text())
        assert (summary["model"], summary["variant"]) == ("demo", variant)
        assert summary["source"]["model"].endswith("demo-qwen3") and summary["source"]["hub_commit"] is None
        assert summary["realized_sparsity_prunable_linears"] == pytest.approx(total)
        assert (summary["wanda"] is None) == variant.startswith("magnitude")
        assert summary["settings"] == prune_settings(config, variant)  # the OWL knobs, calibration, capture


def test_shortgpt_checkpoint_has_fewer_layers(run):
    work, _ = run
    from transformers import AutoModelForCausalLM

    bi = artifacts.read("layer_scores", work / "results/scores/model~demo/scorer~bi.parquet").to_pylist()
    for variant, n in (("shortgpt-s0.30", 2), ("shortgpt-s0.50", 3)):  # round(S * 6) layers removed
        model = AutoModelForCausalLM.from_pretrained(work / f"results/models/model~demo/variant~{variant}")
        assert model.config.num_hidden_layers == 6 - n
        ckpt = work / f"results/models/model~demo/variant~{variant}"
        summary_removed = json.loads((ckpt / "prunetts_prune.json").read_text())["removed_layers"]
        alloc = artifacts.read("allocation", work / f"results/allocation/model~demo/variant~{variant}.parquet")
        removed = sorted({r["layer"] for r in alloc.to_pylist() if r["sparsity"] == 1.0})
        lowest = sorted(sorted(range(5), key=lambda i: bi[i]["score"])[:n])  # last layer (5) is never a candidate
        assert removed == lowest == summary_removed


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


def _dry_run(work, name: str, cfg: dict) -> dict[str, int]:
    (work / name).mkdir()
    return job_counts(snakemake(work, "-n", configfile=write_config(work / name, cfg)))


def test_budget_change_reruns_only_generation_and_downstream(run):
    work, cfg = run
    counts = _dry_run(work, "alt", demo_config(generation={"budgets": [16, 32, 64, 256, 384]}))
    assert set(counts) == {"generate", "grade", "aggregate", "plot_accuracy", "plot_diff", "plot_thinking", "all"}
    assert counts["generate"] == 30 and counts["grade"] == 30  # 15 variants x 2 seeds


def test_unrelated_grading_edit_does_not_rerun_generation(run):
    work, _ = run
    counts = _dry_run(work, "alt2", demo_config(grading={"timeout_s": 7}))
    assert "generate" not in counts and "prune" not in counts and "capture" not in counts
    assert counts["grade"] == 30


def test_owl_knob_reruns_only_owl_variants(run):
    work, _ = run
    counts = _dry_run(work, "alt3", demo_config(pruning={"owl": {"m": 5, "lambda": 0.08}}))
    # magnitude-owl and wanda-owl at both sparsities
    assert counts["layer_scores"] == 1 and counts["allocate"] == 4 and counts["prune"] == 4
    assert counts["generate"] == 8 and "capture" not in counts and "influence" not in counts
