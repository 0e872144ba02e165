"""Incremental reruns: after one real run of a small grid, dry runs (`snakemake -n`, default rerun triggers) of edited
configs and of a bumped implementation version must schedule exactly the affected jobs.

test_e2e.py covers the immediate rerun, a budget change, a grading edit and an OWL knob on its own run; this file adds
a new sparsity, implementation-version bumps and config edits that must rerun nothing.

The run uses a snapshot of the repo's workflow (Snakefile, rules, library, scripts, file times kept) imported through
PYTHONPATH, so a version bump is an edit of the snapshot's `prunetts/versions.py`, never of the repo's, and edits
made to the checkout while the tests run cannot leak in.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.workflow.helpers import REPO, job_counts, jobs_of, micro_config, snakemake, write_config

pytestmark = pytest.mark.workflow

# dense + magnitude with uniform (needs no calibration), OWL (calibration -> capture -> OWL scores) and LayerIF
# allocation (the influence job, which reads the calibration texts but not the windows)
GRID = {"pruning": {"methods": ["magnitude"], "allocations": ["uniform", "owl", "layerif"]}}
PLOTS = {"aggregate": 1, "plot_accuracy": 1, "plot_diff": 1, "plot_thinking": 1, "all": 1}


def copy_workflow(dest: Path, bump: str | None = None) -> Path:
    """A snapshot of the workflow; `bump` adds 1 to that stage's IMPL_VERSION in the snapshot's library."""
    dest.mkdir(parents=True)
    for name in ("Snakefile", "scripts", "envs", "workflow"):
        src = REPO / name
        if src.is_dir():
            shutil.copytree(src, dest / name, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info", "profiles"))
        else:
            shutil.copy2(src, dest / name)  # copy2, as copytree: keep file times (a script's mtime is a trigger)
    if bump:
        versions = dest / "workflow" / "prunetts" / "versions.py"
        text, n = re.subn(
            rf'^(\s*"{bump}":\s*)(\d+),', lambda m: f"{m[1]}{int(m[2]) + 1},", versions.read_text(), flags=re.M
        )
        assert n == 1, f"no IMPL_VERSION entry for {bump}"
        versions.write_text(text)
    return dest


def run_snapshot(snapshot: Path, work: Path, *args: str, configfile: Path):
    return snakemake(
        work,
        *args,
        configfile=configfile,
        snakefile=snapshot / "Snakefile",
        extra_env={"PYTHONPATH": str(snapshot / "workflow")},  # ahead of the editable install's path
    )


def real_run(tmp_path_factory, name: str, grid: dict):
    """A finished run of a micro grid on a snapshot of the workflow: (root, snapshot, work directory)."""
    root = tmp_path_factory.mktemp(name)
    snapshot = copy_workflow(root / "workflow")
    work = root / "work"
    work.mkdir()
    run_snapshot(snapshot, work, "--cores", "2", configfile=write_config(work, micro_config(**grid)))
    return root, snapshot, work


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    return real_run(tmp_path_factory, "reruns", GRID)


def dry_run(
    run, name: str, cfg: dict, snapshot: Path | None = None
) -> tuple[dict[str, int], subprocess.CompletedProcess]:
    """Jobs per rule, and the process (its listing, for ``jobs_of``)."""
    root, base_snapshot, work = run
    (root / name).mkdir()
    proc = run_snapshot(snapshot or base_snapshot, work, "-n", configfile=write_config(root / name, cfg))
    return job_counts(proc), proc


def variants_scheduled(stdout: str) -> set[str]:
    return set(re.findall(r"variant=([^,\s]+)", stdout))


def test_baseline_is_complete(run):
    """Precondition of the tests below: the run left nothing to do."""
    counts, proc = dry_run(run, "same", micro_config(**GRID))
    assert counts == {}, proc.stdout


def test_new_sparsity_adds_only_the_new_variants_jobs(run):
    cfg = micro_config(**GRID)
    cfg["pruning"]["sparsities"] = [0.3, 0.5]
    counts, proc = dry_run(run, "sparsity", cfg)
    new = {"magnitude-uniform-s0.30", "magnitude-owl-s0.30", "magnitude-layerif-s0.30"}
    assert variants_scheduled(proc.stdout) == new
    # plot_layers shows every variant's per-layer sparsity: it is redrawn too
    assert counts == {"allocate": 3, "prune": 3, "generate": 3, "grade": 3, "plot_layers": 1, **PLOTS}


@pytest.mark.parametrize(
    ("stage", "expected", "variants"),
    [
        # the dense capture feeds the OWL scores: only the OWL variant is redone
        (
            "capture",
            {"capture": 1, "layer_scores": 1, "allocate": 1, "prune": 1, "generate": 1, "grade": 1, "plot_layers": 1}
            | PLOTS,
            {"magnitude-owl-s0.50"},
        ),
        (
            "influence",
            {"influence": 1, "layer_scores": 1, "allocate": 1, "prune": 1, "generate": 1, "grade": 1, "plot_layers": 1}
            | PLOTS,
            {"magnitude-layerif-s0.50"},
        ),
        ("allocate", {"allocate": 3, "prune": 3, "generate": 3, "grade": 3, "plot_layers": 1} | PLOTS, None),
        ("generate", {"generate": 4, "grade": 4} | PLOTS, None),
        ("prepare_benchmark", {"prepare_benchmark": 1, "generate": 4, "grade": 4} | PLOTS, None),
        ("grade", {"grade": 4} | PLOTS, None),
    ],
)
def test_impl_version_bump_reruns_the_stage_and_downstream_only(run, stage, expected, variants):
    root, _, _ = run
    snapshot = copy_workflow(root / f"workflow-{stage}", bump=stage)
    counts, proc = dry_run(run, f"bump-{stage}", micro_config(**GRID), snapshot=snapshot)
    assert counts == expected, proc.stdout
    if variants is not None:
        assert variants_scheduled(proc.stdout) == variants
    (job, *_) = jobs_of(proc, stage)
    assert "params" in job["reason"].lower(), job["reason"]  # rerun because the stage's `impl` param changed


def test_unrelated_config_edits_rerun_nothing(run):
    """Cluster resources, the number of grading workers and the generation batch size (the usual answer to an
    out-of-memory error) change how jobs run, not what they compute."""
    cfg = micro_config(**GRID)
    cfg["resources"] = {"generate": {"mem_mb": 1000, "runtime": 30}, "capture": {"gpu": 1}}
    cfg["grading"]["workers"] = 2
    cfg["generation"]["batch_size"] = 3
    cfg["generation"]["journal"] = False
    counts, proc = dry_run(run, "unrelated", cfg)
    assert counts == {}, proc.stdout


def test_a_models_shortgpt_layers_add_only_their_variants(run):
    """A model's own ShortGPT layer counts are variants of that model only, and a new entry in its config reruns none
    of its generations (the generate jobs see the model's settings without it)."""
    cfg = micro_config(**GRID)
    cfg["pruning"]["methods"] = ["magnitude", "shortgpt"]
    cfg["models"]["demo"]["shortgpt_layers"] = [1]
    counts, proc = dry_run(run, "model_shortgpt_layers", cfg)
    assert variants_scheduled(proc.stdout) == {"shortgpt-s0.50", "shortgpt-n1"}
    # ShortGPT's BI scores from the capture the OWL variant already made
    expected = {"layer_scores": 1, "allocate": 2, "prune": 2, "generate": 2, "grade": 2, "plot_layers": 1, **PLOTS}
    assert counts == expected, proc.stdout


def test_key_order_and_written_out_defaults_rerun_nothing(run):
    """Snakemake compares params by repr, which shows a dict's key order: a config rewritten with its keys in
    another order, and with defaults written out (which the schema otherwise appends), is the same config."""

    def reversed_keys(value):
        if isinstance(value, dict):
            return {k: reversed_keys(value[k]) for k in reversed(list(value))}
        return value

    cfg = micro_config(**GRID)
    cfg["influence"]["seed"] = 0
    cfg["generation"]["top_p"] = 1.0
    cfg["capture"] = {"device": "cpu", **cfg["capture"]}
    counts, proc = dry_run(run, "reordered", reversed_keys(cfg))
    assert counts == {}, proc.stdout


def test_capture_settings_rerun_only_what_reads_them(run):
    """The capture batch size changes the capture (hence the OWL scores and variant) and sequential Wanda's passes,
    not a magnitude prune, which only reads the stored weights."""
    cfg = micro_config(**GRID)
    cfg["capture"]["batch_size"] = 4
    counts, proc = dry_run(run, "capture-batch", cfg)
    expected = {"capture": 1, "layer_scores": 1, "allocate": 1, "prune": 1, "generate": 1, "grade": 1}
    assert counts == expected | {"plot_layers": 1} | PLOTS, proc.stdout
    assert variants_scheduled(proc.stdout) == {"magnitude-owl-s0.50"}


def test_calibration_windows_do_not_rerun_the_influence(run):
    """LayerIF reads the calibration texts (source and field), not the windows cut from them: more windows rerun the
    calibration, the capture and the OWL variant, never the influence job (hours on an 8B model) or LayerIF's
    variant."""
    cfg = micro_config(**GRID)
    cfg["calibration"]["n_samples"] = 6
    counts, proc = dry_run(run, "calibration-windows", cfg)
    expected = {"prepare_calibration": 1, "capture": 1, "layer_scores": 1, "allocate": 1, "prune": 1, "generate": 1}
    assert counts == expected | {"grade": 1, "plot_layers": 1} | PLOTS, proc.stdout
    assert variants_scheduled(proc.stdout) == {"magnitude-owl-s0.50"}


def test_temporary_checkpoints_go_once_generated_and_nothing_reruns(tmp_path):
    """pruning.keep_checkpoints: false marks the pruned checkpoints temp(): gone after the run, the sparsity table and
    the grades stay, and a second run has nothing to do."""
    cfg = micro_config(
        pruning={"methods": ["magnitude"], "allocations": ["uniform"], "keep_checkpoints": False},
        benchmarks={"demo": {"limit": 4}},
        generation={"budgets": [16], "seeds": [7]},
    )
    config = write_config(tmp_path, cfg)
    snakemake(tmp_path, "--cores", "2", configfile=config)
    variant = "model~demo/variant~magnitude-uniform-s0.50"
    assert not (tmp_path / "results" / "models" / variant).exists()
    assert (tmp_path / "results" / "sparsity" / f"{variant}.parquet").exists()
    assert (tmp_path / "results" / "grades" / variant / "bench~demo" / "seed~7.parquet").exists()
    counts = job_counts(snakemake(tmp_path, "-n", configfile=config))
    assert counts == {}, counts


# sequential Wanda (uniform), one-pass Wanda (OWL, the by_allocation override) and ShortGPT: the capture's readers
GRID_CAPTURE = {
    "pruning": {
        "methods": ["wanda", "shortgpt"],
        "allocations": ["uniform", "owl"],
        "wanda": {"mode": "sequential", "by_allocation": {"owl": {"mode": "one_pass"}}},
    },
    "benchmarks": {"demo": {"limit": 4}},
    "generation": {"budgets": [16], "seeds": [7]},
}
CAPTURE_READERS = {"wanda-owl-s0.50", "shortgpt-s0.50"}


@pytest.fixture(scope="module")
def capture_run(tmp_path_factory):
    return real_run(tmp_path_factory, "capture-reruns", GRID_CAPTURE)


def test_a_capture_bump_reruns_its_readers_not_sequential_wanda(capture_run):
    """The capture's code changes its statistics: OWL scores and one-pass Wanda (which read them) and ShortGPT (its
    BI) are redone; sequential Wanda measures its own statistics and does not read the capture."""
    root, _, _ = capture_run
    assert dry_run(capture_run, "same", micro_config(**GRID_CAPTURE))[0] == {}
    snapshot = copy_workflow(root / "workflow-capture", bump="capture")
    counts, proc = dry_run(capture_run, "bump-capture", micro_config(**GRID_CAPTURE), snapshot=snapshot)
    assert variants_scheduled(proc.stdout) == CAPTURE_READERS
    rerun = {"layer_scores": 2, "allocate": 2, "prune": 2, "generate": 2, "grade": 2, "plot_layers": 1}
    assert counts == {"capture": 1} | rerun | PLOTS, proc.stdout


def test_capture_settings_rerun_its_readers_and_sequential_wanda(capture_run):
    """A capture setting (the batch size) changes the capture and sequential Wanda's own passes, which use the same
    settings; the uniform allocation itself does not change."""
    cfg = micro_config(**GRID_CAPTURE)
    cfg["capture"]["batch_size"] = 4
    counts, proc = dry_run(capture_run, "capture-batch", cfg)
    assert variants_scheduled(proc.stdout) == CAPTURE_READERS | {"wanda-uniform-s0.50"}
    rerun = {"layer_scores": 2, "allocate": 2, "prune": 3, "generate": 3, "grade": 3, "plot_layers": 1}
    assert counts == {"capture": 1} | rerun | PLOTS, proc.stdout


def test_gpqa_shuffle_seed_written_out_or_left_out_is_the_same_benchmark(tmp_path):
    """gpqa_diamond's shuffle_seed defaults to 0 in its loader (no schema default: the other benchmarks reject the
    key). Writing out `shuffle_seed: 0` (config/paper.yaml does) or leaving it out reruns nothing: it used to change
    prepare_benchmark's params, so every GPQA generation of the grid ran again (and --cache missed)."""
    from tests.conftest import bench_file

    source = tmp_path / "gpqa.jsonl"
    source.write_text("".join(bench_file("gpqa_diamond.jsonl").read_text().splitlines(keepends=True)[:4]))
    cfg = micro_config(pruning={"methods": [], "sparsities": []})
    target = "results/benchmarks/bench~gpqa_diamond.parquet"
    for name, options in (("left-out", {}), ("written-out", {"shuffle_seed": 0})):
        cfg["benchmarks"] = {"gpqa_diamond": {"source": str(source), **options}}
        (tmp_path / name).mkdir()
        configfile = write_config(tmp_path / name, cfg)
        if name == "left-out":
            snakemake(tmp_path, "--cores", "1", target, configfile=configfile)
        assert job_counts(snakemake(tmp_path, "-n", target, configfile=configfile)) == {}, name
    cfg["benchmarks"]["gpqa_diamond"]["shuffle_seed"] = 1  # another shuffle is another benchmark
    configfile = write_config(tmp_path / "written-out", cfg)
    assert job_counts(snakemake(tmp_path, "-n", target, configfile=configfile)) == {"prepare_benchmark": 1}
