"""The workflow on a real Slurm cluster: the single-node cluster of .ci/slurm/start.sh (installed and started here
when missing; .ci/run starts it before the tests), the repo's workflow/profiles/slurm, the micro grid end to end.

Skipped only where Slurm cannot be brought up: not root, or neither Slurm nor apt-get on the machine."""

from __future__ import annotations

import os
import re
import shutil
import subprocess

import pytest

from prunetts import artifacts
from tests.workflow.helpers import REPO, job_counts, micro_config, readme_cache_rules, snakemake, write_config

pytestmark = [pytest.mark.workflow, pytest.mark.slurm]

START = REPO / ".ci" / "slurm" / "start.sh"
PROFILE = REPO / "workflow" / "profiles" / "slurm"
LOCAL_RULES = {"aggregate", "plot_accuracy", "plot_diff", "plot_thinking", "plot_layers", "all"}
GPU_RULES = {"capture", "influence", "prune", "generate"}
# the stages compute on the CPU of the test cluster (device: cpu); the GPU rules ask for a (fake GRES) GPU
# through the config's resources, as a config for a GPU cluster would
MICRO = micro_config(
    pruning={"methods": ["magnitude"], "allocations": ["uniform"]},
    resources={rule: {"gpu": 1} for rule in GPU_RULES},
)
EVAL = "eval_generate_grade"  # the profile's group "eval" as Snakemake names its jobs: the group, then its rules


@pytest.fixture(scope="module")
def cluster():
    """Starts the test cluster (idempotent: returns at once when it is up) and returns its jobcomp log."""
    if os.geteuid() != 0:
        pytest.skip(f"Slurm test cluster needs root to install and start (run `sudo bash {START}`)")
    if not shutil.which("apt-get") and not shutil.which("slurmctld"):
        pytest.skip("Slurm is not installed and apt-get is not available to install it")
    proc = subprocess.run(["bash", str(START)], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, f"{START} failed:\n{proc.stdout}\n{proc.stderr}"
    config = subprocess.run(["scontrol", "show", "config"], capture_output=True, text=True, check=True).stdout
    return re.search(r"^JobCompLoc\s*=\s*(\S+)", config, re.M)[1]


def run_on_slurm(work, cfg: dict, *args: str, extra_env: dict[str, str] | None = None):
    """The workflow through the repo's Slurm profile (``args``: targets and further options); returns the completed
    process and the plugin's run ID."""
    proc = snakemake(
        work,
        "--workflow-profile",
        str(PROFILE),
        *args,  # before the options taking several values (--set-threads), which would swallow a target
        # the test cluster has no accounting database: follow jobs with squeue (MinJobAge is an hour there)
        "--slurm-status-command",
        "squeue",
        "--slurm-init-seconds-before-status-checks",
        "5",
        "--latency-wait",
        "5",
        # the node has 2 CPUs: the profile's set-threads (4 and 8 cores for the GPU rules) could not be scheduled
        "--set-threads",
        *(f"{rule}=2" for rule in GPU_RULES),
        configfile=write_config(work, cfg),
        timeout=1200,
        extra_env=extra_env,
        slurm=True,
    )
    return proc, re.search(r"SLURM run ID: (\S+)", proc.stdout + proc.stderr)[1]


def slurm_jobs(run_id: str) -> list[str]:
    """``scontrol -o show job`` lines of the run's jobs (finished jobs stay in slurmctld for MinJobAge)."""
    out = subprocess.run(["scontrol", "-o", "show", "job"], capture_output=True, text=True, check=True).stdout
    return [line for line in out.splitlines() if f"JobName={run_id} " in line]


def job_rule(job: str) -> str:
    """The rule of a Slurm job line (for a group job: the group's name, e.g. ``eval_generate_grade``)."""
    return re.search(r"Comment=rule_([a-z_]+?)(?:_wildcards|\s)", job)[1]


def asks_gpu(job: str) -> bool:
    return "gres/gpu:1" in job or "gres:gpu:1" in job


@pytest.fixture(scope="module")
def slurm_run(cluster, tmp_path_factory):
    work = tmp_path_factory.mktemp("slurm")
    # dense + one pruned variant: a CPU rule (allocate, grade), GPU rules (prune, generate) and the localrules
    proc, run_id = run_on_slurm(work, MICRO)
    return work, proc, run_id, cluster


def test_outputs_are_complete(slurm_run):
    work, *_ = slurm_run
    scores = artifacts.read("scores", work / "results/tables/scores.parquet").to_pandas()
    assert set(scores["variant"]) == {"dense", "magnitude-uniform-s0.50"}
    assert len(scores) == 2 * 3  # variants x budgets (one seed)
    assert (scores["n_problems"] == 12).all()
    assert (work / "results/figures/accuracy_vs_budget/model~demo_bench~demo.png").stat().st_size > 10_000


def test_every_non_local_job_ran_as_a_slurm_job(slurm_run):
    """Each generation and its grading run as one Slurm job (the profile's group "eval"), every other rule's job as a
    job of its own."""
    work, proc, run_id, jobcomp = slurm_run
    counts = job_counts(proc)
    remote = {rule: n for rule, n in counts.items() if rule not in LOCAL_RULES}
    assert remote == {"prepare_benchmark": 1, "allocate": 1, "prune": 1, "generate": 2, "grade": 2}
    # Slurm's own record of finished jobs (jobcomp/filetxt): every job of this run, all completed
    records = [line for line in open(jobcomp) if f"Name={run_id} " in line]
    assert len(records) == sum(remote.values()) - remote["grade"], records  # grade rides along with generate
    assert all("JobState=COMPLETED" in r and "ExitCode=0:0" in r for r in records), records
    # the plugin's per-job Slurm logs (kept by the profile's slurm-keep-successful-logs)
    for rule in ("prepare_benchmark", "allocate", "prune"):
        assert list((work / ".snakemake/slurm_logs" / f"rule_{rule}").rglob("*.log")), rule
    group_logs = list((work / ".snakemake/slurm_logs" / f"group_{EVAL}").rglob("*.log"))
    assert len(group_logs) == 2, group_logs
    for log in group_logs:  # each group job ran one generate and then its grade
        text = log.read_text()
        assert "rule generate:" in text and "rule grade:" in text, text[-2000:]


def test_gpu_rules_asked_for_a_gpu_and_resources_come_from_the_profile(slurm_run):
    """GPU rules request one GPU (the config's resources), CPU rules none; memory and time limit are the profile's
    default-resources at attempt 1 (8000 MB, 60 min). Finished jobs stay in slurmctld for MinJobAge (an hour)."""
    _, _, run_id, _ = slurm_run
    seen = set()
    for job in slurm_jobs(run_id):
        rule = job_rule(job)
        seen.add(rule)
        assert asks_gpu(job) == (rule in GPU_RULES | {EVAL}), job
        if rule == EVAL:  # generate then grade in series: the runtimes add up, the memory is the larger one's
            assert "TimeLimit=02:00:00" in job and "MinMemoryNode=8000M" in job, job
        else:
            assert "TimeLimit=01:00:00" in job and "MinMemoryNode=8000M" in job, job
        if rule in GPU_RULES | {EVAL}:  # set-threads reaches sbatch as --cpus-per-task
            assert "CPUs/Task=2" in job, job
    assert {"prune", EVAL} <= seen and not {"generate", "grade"} & seen, seen


def test_a_grading_rerun_asks_for_no_gpu(slurm_run):
    """A change that reruns grade alone (here a grading parameter; likewise a grading code change, through its
    IMPL_VERSION) submits grade-only group jobs: no GPU, grade's own time limit, and generate does not rerun."""
    work, *_ = slurm_run
    cfg = {**MICRO, "grading": {**MICRO["grading"], "timeout_s": MICRO["grading"]["timeout_s"] + 1}}
    dry = snakemake(work, "-n", configfile=write_config(work, cfg))
    assert {r: n for r, n in job_counts(dry).items() if r not in LOCAL_RULES} == {"grade": 2}, dry.stdout
    proc, run_id = run_on_slurm(work, cfg)
    assert "generate" not in job_counts(proc)
    jobs = slurm_jobs(run_id)
    assert len(jobs) == 2, jobs
    for job in jobs:
        assert job_rule(job) == "eval_grade", job  # the group "eval", holding only grade
        assert not asks_gpu(job), job
        assert "TimeLimit=01:00:00" in job and "JobState=COMPLETED" in job, job


def test_the_readme_cache_command_shares_outputs_between_workflows_on_slurm(cluster, tmp_path):
    """The README's --cache command: the first workflow's Slurm job moves its output into the cache, the second's links
    it from there. A bare --cache reaches no Slurm job (Snakemake passes the empty rule list on as nothing), and the
    cache stayed empty."""
    cache = tmp_path / "cache"
    cache.mkdir()
    target = "results/benchmarks/bench~demo.parquet"
    rules = readme_cache_rules()
    assert "prepare_benchmark" in rules, rules
    for name in ("first", "second"):
        work = tmp_path / name
        work.mkdir()
        proc, _ = run_on_slurm(work, MICRO, target, "--cache", *rules, extra_env={"SNAKEMAKE_OUTPUT_CACHE": str(cache)})
        out = work / target
        assert out.is_symlink() and out.resolve().parent == cache.resolve(), (name, proc.stdout, proc.stderr)
        (job_log,) = (work / ".snakemake/slurm_logs/rule_prepare_benchmark").rglob("*.log")
        verb = "Moving output file" if name == "first" else "Symlinking output file"
        assert f"{verb} {target}" in job_log.read_text(), job_log.read_text()[-2000:]
    assert len(list(cache.iterdir())) == 1
