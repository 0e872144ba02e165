"""Running Snakemake on the repo's Snakefile from a test, in a temporary working directory."""

from __future__ import annotations

import functools
import os
import re
import subprocess
import sys
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]
DEMO_MODEL = REPO / "resources" / "demo-qwen3"


def _with_overrides(cfg: dict, overrides: dict) -> dict:
    """Top-level sections replaced, or merged one level deep when the override is a mapping."""
    for key, value in overrides.items():
        cfg[key] = {**cfg.get(key, {}), **value} if isinstance(value, dict) else value
    return cfg


def demo_config(**overrides) -> dict:
    """config/config.yaml, the shipped demo, with the model path made absolute (runs happen in other directories)."""
    cfg = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    cfg["models"]["demo"]["path"] = str(DEMO_MODEL)
    return _with_overrides(cfg, overrides)


@functools.cache
def _scontrol_stub_dir() -> Path | None:
    """A folder holding an ``scontrol`` that fails at once, made once per test process; None where Slurm's client is
    not installed. Every Snakemake start runs ``scontrol show config`` (the Slurm executor plugin computes its
    status-command default and MinJobAge on import, whatever the executor), and where the client is installed but no
    controller answers, that call waits ~9 s before failing: ~40 dry runs made the suite ~14 min slower on a machine
    whose test cluster was down. Failing at once gives the plugin the same answer (no config) without the wait."""
    import atexit
    import shutil
    import tempfile

    if shutil.which("scontrol") is None:
        return None
    stub = Path(tempfile.mkdtemp(prefix="prunetts-scontrol-stub-"))
    atexit.register(shutil.rmtree, stub, ignore_errors=True)
    (stub / "scontrol").write_text("#!/bin/sh\nexit 1\n")
    (stub / "scontrol").chmod(0o755)
    return stub


def micro_config(**overrides) -> dict:
    """A few-minute grid on the demo model: dense, magnitude/wanda x uniform/owl/layerif and ShortGPT at 0.5,
    3 budgets, one seed, 12 problems: every stage and every method's code path."""
    cfg = {
        "models": {"demo": {"path": str(DEMO_MODEL), "delimiters": "s1", "trust_remote_code": False}},
        "benchmarks": {"demo": {"limit": 12}},
        "pruning": {
            "include_dense": True,
            "methods": ["magnitude", "wanda", "shortgpt"],
            "allocations": ["uniform", "owl", "layerif"],
            "sparsities": [0.5],
        },
        "influence": {
            "n_train": 8,
            "n_val": 4,
            "max_len": 128,
            "projection_dim": 0,
            "device": "cpu",
            "dtype": "float32",
        },
        "calibration": {"source": "demo", "mode": "pack", "n_samples": 8, "seqlen": 128, "seed": 0},
        "capture": {"batch_size": 8, "dtype": "float32", "device": "cpu"},
        "generation": {
            "budgets": [16, 64, 256],
            "seeds": [7],
            "temperature": 0.6,
            "max_gen_toks": 32,
            "batch_size": 12,
            "dtype": "float32",
            "device": "cpu",
        },
        "grading": {"workers": 1, "timeout_s": 5},
    }
    return _with_overrides(cfg, overrides)


def write_config(workdir: Path, cfg: dict) -> Path:
    path = workdir / "config.yaml"
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    return path


def snakemake_command(
    workdir: Path,
    *args: str,
    configfile: Path | None = None,
    snakefile: Path | None = None,
    extra_env: dict[str, str] | None = None,
    slurm: bool = False,
) -> tuple[list[str], dict[str, str]]:
    """The command line and environment of `snakemake ARGS` on the repo's Snakefile (or `snakefile`) in `workdir`:
    this venv's Snakemake, offline, no tokenizer threads; Slurm's ``scontrol`` stubbed out unless ``slurm`` (runs
    on the test cluster)."""
    snakefile = snakefile or REPO / "Snakefile"
    cmd = [sys.executable, "-m", "snakemake", "--snakefile", str(snakefile), "--directory", str(workdir)]
    if configfile:
        cmd += ["--configfile", str(configfile)]
    stub = None if slurm else _scontrol_stub_dir()
    path = [str(stub)] if stub else []
    env = {
        **os.environ,
        "PATH": os.pathsep.join([*path, str(Path(sys.executable).parent), os.environ.get("PATH", "")]),
        "HF_HUB_OFFLINE": "1",
        "TOKENIZERS_PARALLELISM": "false",
        **(extra_env or {}),
    }
    return cmd + list(args), env


def snakemake(
    workdir: Path,
    *args: str,
    configfile: Path | None = None,
    check: bool = True,
    timeout: int = 900,
    snakefile: Path | None = None,
    extra_env: dict[str, str] | None = None,
    slurm: bool = False,
) -> subprocess.CompletedProcess:
    """`snakemake ARGS` on the repo's Snakefile (or `snakefile`, e.g. a copy of the workflow) in `workdir`; ``slurm``:
    the run talks to the test cluster (``snakemake_command``)."""
    cmd, env = snakemake_command(
        workdir, *args, configfile=configfile, snakefile=snakefile, extra_env=extra_env, slurm=slurm
    )
    proc = subprocess.run(cmd, cwd=workdir, env=env, capture_output=True, text=True, timeout=timeout)
    if check and proc.returncode != 0:
        raise AssertionError(f"snakemake {' '.join(args)} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    return proc


def job_stats(text: str) -> dict[str, int]:
    """Parse the 'Job stats' table Snakemake prints (jobs per rule, and 'total'); {} when there is nothing to do.
    bench/dag.py uses it too."""
    if "Job stats:" not in text:
        return {}
    table = text.split("Job stats:", 1)[1]
    counts = {}
    for line in table.splitlines()[3:]:
        m = re.match(r"^(\S+)\s+(\d+)$", line.strip())
        if not m:
            break
        counts[m[1]] = int(m[2])
    return counts


def job_counts(proc: subprocess.CompletedProcess) -> dict[str, int]:
    """Jobs per rule of a Snakemake run or dry run; {} when there is nothing to do."""
    counts = job_stats(proc.stdout + proc.stderr)
    counts.pop("total", None)
    return counts


def jobs_of(proc: subprocess.CompletedProcess, rule: str) -> list[dict[str, str]]:
    """The listed fields (input, output, wildcards, resources, ...) of every job of ``rule`` in a dry run's output,
    with the wildcards also parsed into ``wc``."""
    jobs = []
    for chunk in proc.stdout.split(f"rule {rule}:\n")[1:]:
        fields = {}
        for line in chunk.splitlines():
            m = re.match(r"^    (\w+): (.*)$", line)
            if not m:
                break
            fields[m[1]] = m[2]
        fields["wc"] = dict(kv.split("=", 1) for kv in fields.get("wildcards", "").split(", ") if kv)
        jobs.append(fields)
    return jobs


def readme_cache_rules() -> list[str]:
    """The rule names of the README's between-workflow cache command (the words after its ``--cache``)."""
    readme = (REPO / "README.md").read_text()
    command = re.search(r"^export SNAKEMAKE_OUTPUT_CACHE=.*?\n(.*?)```", readme, re.M | re.S)[1]
    return re.search(r"--cache((?: +\w+)*)", command)[1].split()
