"""Static checks of the workflow: lint, and the job counts of a dry run of the demo config."""

import shutil

from tests.workflow.helpers import REPO, job_counts, micro_config, snakemake, write_config


def test_lint_clean(tmp_path):
    proc = snakemake(REPO, "--lint", check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_demo_config_dry_run_job_counts(tmp_path):
    shutil.copytree(REPO / "config", tmp_path / "config")
    (tmp_path / "resources").symlink_to(REPO / "resources")
    counts = job_counts(snakemake(tmp_path, "-n"))
    # 7 variants (dense + 2 methods x 3 sparsities), 1 bench, 2 seeds
    assert counts == {
        "all": 1,
        "prepare_benchmark": 1,
        "prepare_calibration": 1,
        "capture": 1,
        "allocate": 6,
        "prune": 6,
        "generate": 14,
        "grade": 14,
        "aggregate": 1,
        "plot_accuracy": 1,
    }


def test_magnitude_only_grid_needs_no_capture(tmp_path):
    cfg = write_config(tmp_path, micro_config(pruning={"methods": ["magnitude"]}))
    counts = job_counts(snakemake(tmp_path, "-n", configfile=cfg))
    assert "capture" not in counts and "prepare_calibration" not in counts
    assert counts["prune"] == 1 and counts["generate"] == 2
