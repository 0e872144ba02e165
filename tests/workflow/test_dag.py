"""Static checks of the workflow: lint, and the job counts of a dry run of the demo config."""

import shutil

from tests.workflow.helpers import REPO, job_counts, jobs_of, micro_config, snakemake, write_config


def test_lint_clean(tmp_path):
    proc = snakemake(REPO, "--lint", check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_demo_config_dry_run_job_counts(tmp_path):
    shutil.copytree(REPO / "config", tmp_path / "config")
    (tmp_path / "resources").symlink_to(REPO / "resources")
    counts = job_counts(snakemake(tmp_path, "-n"))
    # 15 variants (dense + 2 criteria x 3 allocations x 2 sparsities + 2 ShortGPT), 1 bench, 2 seeds
    assert counts == {
        "all": 1,
        "prepare_benchmark": 1,
        "prepare_calibration": 1,
        "capture": 1,
        "influence": 1,
        "layer_scores": 3,
        "allocate": 14,
        "prune": 14,
        "generate": 30,
        "grade": 30,
        "aggregate": 1,
        "plot_accuracy": 1,
        "plot_diff": 1,
        "plot_thinking": 1,
        "plot_layers": 1,
    }


def test_magnitude_uniform_grid_needs_no_calibration(tmp_path):
    cfg = write_config(tmp_path, micro_config(pruning={"methods": ["magnitude"], "allocations": ["uniform"]}))
    counts = job_counts(snakemake(tmp_path, "-n", configfile=cfg))
    assert "capture" not in counts and "prepare_calibration" not in counts and "influence" not in counts
    assert counts["prune"] == 1 and counts["generate"] == 2


def test_one_pass_wanda_reads_the_capture_and_owl_needs_no_influence(tmp_path):
    cfg = write_config(
        tmp_path,
        micro_config(pruning={"methods": ["wanda"], "allocations": ["owl"], "wanda": {"mode": "one_pass"}}),
    )
    proc = snakemake(tmp_path, "-n", "--printshellcmds", configfile=cfg)
    counts = job_counts(proc)
    assert counts["capture"] == 1 and counts["layer_scores"] == 1 and "influence" not in counts
    assert "linear_stats.parquet" in jobs_of(proc, "prune")[0]["input"]


def test_wanda_by_allocation_override_picks_the_inputs_of_each_variant(tmp_path):
    """The paper code's setting: LayerIF Wanda one-pass (reads the dense capture), uniform Wanda sequential (reads
    the calibration windows)."""
    override = {"mode": "sequential", "by_allocation": {"layerif": {"mode": "one_pass", "group": "matrix"}}}
    cfg = write_config(
        tmp_path,
        micro_config(pruning={"methods": ["wanda"], "allocations": ["uniform", "layerif"], "wanda": override}),
    )
    proc = snakemake(tmp_path, "-n", configfile=cfg)
    inputs = {job["wc"]["variant"]: job["input"] for job in jobs_of(proc, "prune")}
    assert set(inputs) == {"wanda-uniform-s0.50", "wanda-layerif-s0.50"}
    assert "results/calibration/" in inputs["wanda-uniform-s0.50"]
    assert "linear_stats.parquet" not in inputs["wanda-uniform-s0.50"]
    assert "linear_stats.parquet" in inputs["wanda-layerif-s0.50"]
    assert "results/calibration/" not in inputs["wanda-layerif-s0.50"]


def test_local_data_files_are_inputs(tmp_path):
    """A local benchmark, calibration or influence file is an input of the jobs that read it (so editing it reruns
    them, and --cache hashes its content); demo / c4 / hub sources are not files."""
    from tests.conftest import bench_file

    texts, val = tmp_path / "texts.jsonl", tmp_path / "val.jsonl"
    shutil.copy(bench_file("c4_demo.jsonl"), texts)
    shutil.copy(bench_file("c4_demo.jsonl"), val)
    problems = tmp_path / "math500.jsonl"
    shutil.copy(bench_file("math500.jsonl"), problems)
    cfg = micro_config(pruning={"methods": ["wanda"], "allocations": ["layerif"]})
    cfg["benchmarks"] = {"math500": {"source": str(problems), "limit": 3}}
    cfg["calibration"].update(source=str(texts), text_field="text")
    cfg["influence"]["val_source"] = str(val)
    proc = snakemake(tmp_path, "-n", configfile=write_config(tmp_path, cfg))
    assert str(problems) in jobs_of(proc, "prepare_benchmark")[0]["input"]
    assert str(texts) in jobs_of(proc, "prepare_calibration")[0]["input"]
    influence = jobs_of(proc, "influence")[0]["input"]
    assert str(texts) in influence and str(val) in influence  # training texts from the calibration file
    demo = snakemake(tmp_path, "-n", configfile=write_config(tmp_path, micro_config()))
    from tests.workflow.helpers import DEMO_MODEL

    assert all(f.startswith(str(DEMO_MODEL)) for f in jobs_of(demo, "prepare_calibration")[0]["input"].split(", "))


def test_a_local_dataset_folder_source_is_an_input_by_its_files(tmp_path):
    """A benchmark source may be a local dataset folder (read by datasets.load_dataset): its files are the job's
    inputs, so editing one reruns prepare_benchmark and --cache keys its content. As a folder it used to be no input
    at all: an edited file changed nothing, and two workflows with different data under one path shared a cache
    entry."""
    from tests.conftest import bench_file

    folder = tmp_path / "math500-data"
    (folder / "data").mkdir(parents=True)
    shutil.copy(bench_file("math500.jsonl"), folder / "data" / "test.jsonl")
    (folder / ".git").mkdir()
    (folder / ".git" / "HEAD").write_text("ref: refs/heads/main\n")
    cfg = micro_config(pruning={"methods": [], "sparsities": []})
    cfg["benchmarks"] = {"math500": {"source": str(folder), "limit": 3}}
    proc = snakemake(tmp_path, "-n", configfile=write_config(tmp_path, cfg))
    (job,) = jobs_of(proc, "prepare_benchmark")
    assert job.get("input") == str(folder / "data" / "test.jsonl"), job


def test_the_calibration_job_reads_the_tokenizer_files_not_the_weights(tmp_path):
    """New weights in a local checkpoint do not rerun the calibration windows (tokenizer only), and --cache does not
    hash the weights to key them; the prune reads the weights."""
    cfg = write_config(tmp_path, micro_config(pruning={"methods": ["wanda"], "allocations": ["uniform"]}))
    proc = snakemake(tmp_path, "-n", configfile=cfg)
    (calibration,) = jobs_of(proc, "prepare_calibration")
    assert "tokenizer.json" in calibration["input"] and ".safetensors" not in calibration["input"]
    prune = jobs_of(proc, "prune")
    assert prune and all("model.safetensors" in job["input"] for job in prune)


def test_a_target_outside_the_configured_grid_is_no_rule_not_a_traceback(tmp_path):
    cfg = write_config(tmp_path, micro_config())
    for target in (
        "results/generations/model~demo/variant~dense/bench~math500/seed~7.parquet",  # a benchmark not configured
        "results/models/model~demo/variant~wanda-owl-s0.3",  # not a variant slug of the grid
        "results/grades/model~other/variant~dense/bench~demo/seed~7.parquet",  # a model not configured
    ):
        proc = snakemake(tmp_path, "-n", target, configfile=cfg, check=False)
        out = proc.stdout + proc.stderr
        assert proc.returncode != 0 and f"No rule to produce {target}" in out, out
        assert "Traceback" not in out and "KeyError" not in out, out


def test_the_dag_and_the_jobs_import_their_own_checkouts_library(tmp_path):
    """A second checkout (a clone, a worktree) run with an environment whose prunetts is installed from another one:
    the Snakefile's config checks, variants and IMPL_VERSION params, and the jobs' code, all come from its own
    ``workflow/``, never from the installed copy."""
    from tests.workflow.test_reruns import copy_workflow

    snapshot = copy_workflow(tmp_path / "clone")
    marks = tmp_path / "imports.txt"
    init = snapshot / "workflow" / "prunetts" / "__init__.py"
    init.write_text(
        init.read_text()
        + f"\nimport sys as _sys\n\nwith open({str(marks)!r}, 'a') as _f:\n    _f.write(_sys.argv[0] + '\\n')\n"
    )
    cfg = write_config(tmp_path, micro_config())
    # no PYTHONPATH: the environment's installed prunetts (this repo's) is what a plain import finds
    snakemake(
        tmp_path,
        "--cores",
        "1",
        "results/benchmarks/bench~demo.parquet",
        configfile=cfg,
        snakefile=snapshot / "Snakefile",
        extra_env={"PYTHONPATH": ""},
    )
    importers = marks.read_text().splitlines() if marks.exists() else []
    assert any(line.endswith("__main__.py") for line in importers), importers  # Snakemake (the DAG)
    assert any(line.endswith("prepare_benchmark.py") for line in importers), importers  # the job
