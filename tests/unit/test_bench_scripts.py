"""The bench/ scripts run (tiny sizes) and their built-in correctness checks hold. No timing is asserted: the ratios
they print are measurements for the README, not test conditions."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.conftest import REPO


def _bench(script: str, *args: str) -> str:
    proc = subprocess.run(
        [sys.executable, str(REPO / "bench" / script), *args], capture_output=True, text=True, timeout=600, cwd=REPO
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc.stdout


def test_prune_bench_runs_and_both_sides_write_the_same_checkpoints():
    out = _bench("prune.py", "--quick", "--parts", "ab")
    grids = [line for line in out.splitlines() if line.startswith("(a) unstructured grid")]
    assert len(grids) == 3 and all(line.endswith("identical checkpoints: True") for line in grids), out
    assert out.count("counted once on both sides: ratio") == 3, out  # the influence-once reading of each setting
    assert "layer by layer (prunetts)" in out and "whole model, fp32 (reference)" in out


def test_prune_bench_c_names_both_pairings_and_says_why_it_skips_without_llmcompressor():
    """(c) pairs each Wanda mode with the llm-compressor pipeline that computes its masks, on both shapes; without
    ``--llmcompressor-python`` (CI has no llm-compressor venv) each says how to run it instead of a number."""
    out = _bench("prune.py", "--quick", "--parts", "c")
    heads = [line for line in out.splitlines() if line.startswith("(c) Wanda")]
    assert [h.split(",")[0] for h in heads] == [
        "(c) Wanda sequential vs llm-compressor WandaPruningModifier",
        "(c) Wanda one_pass vs llm-compressor WandaPruningModifier",
    ] * 2, out
    assert ["pipeline 'sequential'" in h for h in heads] == [True, False, True, False], out
    assert ["pipeline 'basic'" in h for h in heads] == [False, True, False, True], out
    assert out.count("skipped: pass --llmcompressor-python") == 4, out


def test_prune_bench_builds_the_qwen3_8b_shape_tensor_by_tensor():
    """``--b-shape qwen3-8b`` writes its checkpoint through the streaming writer (sharded here) and prunes it."""
    out = _bench("prune.py", "--quick", "--parts", "b", "--b-shape", "qwen3-8b")
    assert "Qwen3-8B's shape" in out, out
    rows = {line[:36].strip(): line for line in out.splitlines() if "peak RSS" in line and " x checkpoint" in line}
    assert set(rows) == {
        "layer by layer (prunetts)",
        "prunetts prune, OWL (+ capture)",
        "whole model, fp32 (reference)",
    }
    assert (
        "sparsity 0.500" in rows["layer by layer (prunetts)"]
        and "sparsity 0.4" in rows["prunetts prune, OWL (+ capture)"]
    )


def test_generate_bench_runs_and_the_three_protocols_agree():
    out = _bench("generate.py", "--n", "4", "--budgets", "8", "16", "--batch-size", "4")
    assert "outputs of all three identical: True" in out, out


def test_layerif_sketch_bench_runs():
    out = _bench(
        "layerif_sketch.py", "--random", "64", "128", "2", "4", "2", "--n-train", "4", "--n-val", "2",
        "--max-len", "32", "--dims", "16", "--seeds", "1",
    )  # fmt: skip
    assert "countsketch" in out and "kronecker" in out and "exact, other texts" in out, out


def test_influence_bench_runs_and_both_paths_give_the_same_scores():
    out = _bench("influence.py", "--quick")
    line = next(x for x in out.splitlines() if "same rows:" in x)
    assert "same rows: True" in line, out
    assert float(line.rsplit("largest score difference ", 1)[1].split()[0]) < 1e-5, out
    assert "token factors (prunetts)" in out and "Qwen3-8B, bf16, 512 tokens" in out, out


def test_aggregate_bench_runs_both_grids_and_its_checks_hold():
    out = _bench("aggregate.py", "--fraction", "0.02")
    assert "paper (config/paper.yaml): 420 grades files" in out and "demo (config/config.yaml): 30 grades" in out, out
    rows = {line.split()[0]: line.split() for line in out.splitlines() if line.startswith(("aggregate ", "plot"))}
    assert set(rows) == {"aggregate", "plot", "plot_diff", "plot_thinking"}, out
    assert all(r[-1] == "0" for r in rows.values()), out  # no warnings
    assert "checks (rows, Holm families, tables, figures): ok" in out, out


@pytest.mark.workflow
def test_dag_bench_runs():
    out = _bench("dag.py", "--repeats", "1")
    assert "paper (config/paper.yaml)" in out and "10x synthetic" in out, out


def test_true_sequential_bench_runs_and_layer_0_qkv_masks_match_the_reference():
    """Layer 0's q/k/v see the embeddings on both sides, so their masks must be the reference's: a check that the
    pre-hook scores each linear on its whole input before it runs."""
    out = _bench("true_sequential.py", "--quick", "--windows", "4", "--sparsities", "0.2", "0.5")
    rows = [line for line in out.splitlines() if "mask agreement" in line]
    assert len(rows) == 4 and all(row.endswith("(layer 0 q/k/v identical: True)") for row in rows), out
