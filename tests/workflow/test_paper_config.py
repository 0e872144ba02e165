"""config/paper.yaml: the paper's grid, checked by a dry run (nothing is downloaded or computed)."""

import re

import yaml

from tests.workflow.helpers import REPO, job_counts, jobs_of, snakemake

PAPER = REPO / "config" / "paper.yaml"


def test_paper_config_is_the_papers_grid():
    cfg = yaml.safe_load(PAPER.read_text())
    assert [m["path"] for m in cfg["models"].values()] == ["simplescaling/s1.1-7B", "Qwen/Qwen3-8B"]
    assert set(cfg["benchmarks"]) == {"math500", "aime24", "amc23", "gpqa_diamond"}
    p = cfg["pruning"]
    assert p["include_dense"] and p["methods"] == ["magnitude", "wanda", "shortgpt"]
    assert p["allocations"] == ["uniform", "owl", "layerif"] and p["sparsities"] == [0.1, 0.2]
    # the reference Wanda for uniform and OWL; LayerIF as the paper's code prunes it (wanda_influence)
    assert p["wanda"] == {
        "mode": "sequential",
        "group": "row",
        "by_allocation": {"layerif": {"mode": "one_pass", "group": "matrix"}},
    }
    g = cfg["generation"]
    assert g["budgets"] == [512, 1024, 2048, 4096, 8192] and g["seeds"] == [7, 11, 42]
    assert g["temperature"] == 1.0 and g["max_gen_toks"] == 32768
    assert cfg["calibration"] == {"source": "c4", "mode": "paper", "n_samples": 128, "seqlen": 2048, "seed": 0}
    # the released scripts' PRUNE_LAYERS {1, 2, 3}, less what a sparsity already removes (round(0.1 x 28) = 3)
    assert [m.get("shortgpt_layers") for m in cfg["models"].values()] == [[1, 2], [1, 2, 3]]


def test_paper_config_dry_run_job_counts(tmp_path):
    proc = snakemake(tmp_path, "-n", configfile=PAPER)
    counts = job_counts(proc)
    models, benches, seeds = 2, 4, 3
    # {magnitude, wanda} x {uniform, owl, layerif} x {0.1, 0.2} + ShortGPT at 0.1 and 0.2, on each model
    shared = 2 * 3 * 2 + 2
    pruned = 2 * shared + 2 + 3  # + ShortGPT removing 1, 2 layers of s1.1-7B and 1, 2, 3 of Qwen3-8B
    variants = pruned + models  # + dense
    expected = {
        "prepare_benchmark": benches,
        "prepare_calibration": models,
        "capture": models,
        "influence": models,
        "layer_scores": 3 * models,  # OWL ratios, ShortGPT BI, LayerIF
        "allocate": pruned,
        "prune": pruned,
        "generate": variants * benches * seeds,  # 420: every budget inside each job
        "grade": variants * benches * seeds,
        "aggregate": 1,
        "plot_accuracy": models * benches,
        "plot_diff": models * benches,
        "plot_thinking": models * benches,
        "plot_layers": models,
    }
    assert {k: counts.get(k) for k in expected} == expected
    # the GPU rules carry the config's resources
    generate = jobs_of(proc, "generate")[0]["resources"]
    assert re.search(r"\bgpu=1\b", generate) and "runtime=1380" in generate
    prunes = jobs_of(proc, "prune")
    assert len(prunes) == pruned
    layer_counts = {
        (job["wc"]["model"], job["wc"]["variant"]) for job in prunes if job["wc"]["variant"].startswith("shortgpt-n")
    }
    assert layer_counts == {("s1.1-7B", "shortgpt-n1"), ("s1.1-7B", "shortgpt-n2")} | {
        ("Qwen3-8B", f"shortgpt-n{n}") for n in (1, 2, 3)
    }
    # a GPU for the prune jobs that run the model: sequential Wanda (uniform and OWL here; LayerIF's is one-pass)
    for job in prunes:
        sequential = job["wc"]["variant"].startswith(("wanda-uniform", "wanda-owl"))
        assert re.search(r"\bgpu=1\b" if sequential else r"\bgpu=0\b", job["resources"]), job
    # Wanda reads the calibration windows (sequential) except under LayerIF, where it reads the dense capture
    wanda = [job for job in prunes if job["wc"]["variant"].startswith("wanda-")]
    assert len(wanda) == 2 * 3 * models
    for job in wanda:
        one_pass = job["wc"]["variant"].startswith("wanda-layerif-")
        assert ("linear_stats.parquet" in job["input"]) == one_pass, job
        assert ("results/calibration/" in job["input"]) != one_pass, job


def test_configfile_replaces_the_demo_config(tmp_path):
    """From a checkout (config/config.yaml, the demo's, in the working directory), --configfile runs that config
    alone: Snakemake's default would merge it into the demo's, adding the demo model and benchmark to the grid and
    the demo's CPU / float32 settings to every stage the user's file leaves out."""
    import shutil

    (tmp_path / "config").mkdir()
    shutil.copy(REPO / "config" / "config.yaml", tmp_path / "config" / "config.yaml")
    proc = snakemake(tmp_path, "-n", configfile=PAPER)
    assert job_counts(proc)["generate"] == 420 and "extended by additional config" not in proc.stdout + proc.stderr
    assert not [job for job in jobs_of(proc, "generate") if job["wc"]["model"] == "demo"]
