"""The Snakemake profiles in workflow/profiles, by dry runs: they load, GPU rules ask for a GPU and CPU rules do not,
and resources resolve as the README says (profile set-resources > config `resources:` > the workflow's GPU default >
profile default-resources)."""

from __future__ import annotations

import re

import pytest

from tests.workflow.helpers import REPO, micro_config, readme_cache_rules, snakemake, write_config

pytestmark = pytest.mark.workflow

PROFILES = REPO / "workflow" / "profiles"


def resources_by_rule(stdout: str) -> dict[str, dict[str, str]]:
    """The `resources:` line of the first job of each rule in a dry run's job list (group jobs list theirs indented)."""
    out = {}
    for block in re.split(r"\n(?=\s*\[.*\]\n\s*(?:local)?rule )", stdout):
        m = re.search(r"^\s*(?:local)?rule (\w+):", block, re.M)
        res = re.search(r"^\s+resources: (.*)$", block, re.M)
        if m and res and m[1] not in out:
            out[m[1]] = dict(kv.split("=", 1) for kv in res[1].split(", "))
    return out


def prune_gpus(stdout: str) -> dict[str, str]:
    """The ``gpu`` resource of each prune job of a dry run, by variant (None where it has none)."""
    out = {}
    for block in re.split(r"\n(?=\s*\[.*\]\n\s*rule )", stdout):
        if re.search(r"^\s*rule prune:", block, re.M):
            variant = re.search(r"variant=([^,\s]+)", block)[1]
            out[variant] = dict(
                kv.split("=", 1) for kv in re.search(r"^\s+resources: (.*)$", block, re.M)[1].split(", ")
            ).get("gpu")
    return out


def test_slurm_profile_on_the_paper_grid(tmp_path):
    proc = snakemake(
        tmp_path, "-n", "--workflow-profile", str(PROFILES / "slurm"), configfile=REPO / "config" / "paper.yaml"
    )
    res = resources_by_rule(proc.stdout)
    # each generation and its grading are one Slurm job (the profile's group "eval")
    assert proc.stdout.count("Group job eval (") == 420
    # GPU rules: one GPU from the profile; memory and time from config/paper.yaml (over the profile's defaults)
    assert (
        res["generate"]["gpu"] == "1" and res["generate"]["runtime"] == "1380" and res["generate"]["mem_mb"] == "64000"
    )
    assert res["capture"]["gpu"] == "1" and res["capture"]["mem_mb"] == "64000"
    assert res["influence"]["gpu"] == "1"
    # prune: a GPU for sequential Wanda only (uniform and OWL here; LayerIF's is one-pass), the rest reads and writes
    gpus = prune_gpus(proc.stdout)
    assert len(gpus) == 17 and all(
        g == ("1" if v.startswith(("wanda-uniform", "wanda-owl")) else "0") for v, g in gpus.items()
    ), gpus
    # CPU rules: no GPU; grade sized by the config, the others by the profile's default-resources (attempt 1)
    assert "gpu" not in res["grade"] and res["grade"]["mem_mb"] == "16000" and res["grade"]["runtime"] == "60"
    for rule in ("prepare_benchmark", "prepare_calibration", "layer_scores", "allocate"):
        assert "gpu" not in res[rule], rule
        assert res[rule]["mem_mb"] == "8000" and res[rule]["runtime"] == "60", rule


GPU_RULES = ("capture", "influence", "prune", "generate")
AUTO = {"influence": {"device": "auto"}, "capture": {"device": "auto"}, "generation": {"device": "auto"}}


@pytest.mark.parametrize("profile", ["local", "slurm"])
def test_gpu_rules_get_a_gpu_unless_the_config_says_otherwise(tmp_path, profile):
    """The workflow's default: one GPU for each GPU rule whose stage may run on one (device auto); none where the
    stage runs on the CPU; and a config's own gpu count (vLLM tensor parallelism) is not overridden by a profile."""
    profile = ["--workflow-profile", str(PROFILES / profile)]

    def dry(name, **overrides):
        cfg = write_config(tmp_path, micro_config(**overrides))
        return resources_by_rule(snakemake(tmp_path, "-n", *profile, configfile=cfg).stdout)

    def dry_gpus(name, **overrides):
        cfg = write_config(tmp_path, micro_config(**overrides))
        stdout = snakemake(tmp_path, "-n", *profile, configfile=cfg).stdout
        return resources_by_rule(stdout), prune_gpus(stdout)

    res, gpus = dry_gpus("auto", **AUTO)
    for rule in ("capture", "influence", "generate"):
        assert res[rule].get("gpu") == "1", rule
    # prune only for sequential Wanda, which runs the model; magnitude, one-pass Wanda and ShortGPT get none
    assert gpus and all(g == ("1" if v.startswith("wanda-") else "0") for v, g in gpus.items()), gpus
    one_pass = {"wanda": {"mode": "sequential", "by_allocation": {"owl": {"mode": "one_pass"}}}}
    _, gpus = dry_gpus("one-pass", **AUTO, pruning=one_pass)
    assert gpus["wanda-owl-s0.50"] == "0" and gpus["wanda-uniform-s0.50"] == "1", gpus
    for rule in ("prepare_benchmark", "allocate", "grade", "aggregate"):
        assert "gpu" not in res[rule], rule
    res = dry("cpu")  # micro_config computes on the CPU
    assert not any("gpu" in res[rule] for rule in GPU_RULES), res
    res = dry("two", **AUTO, resources={"generate": {"gpu": 2}, "prune": {"gres": "gpu:a100:1"}})
    # the local profile's machine-wide pool (resources: gpu: 1) caps a local job; on Slurm each job gets its own
    assert res["generate"]["gpu"] == ("1" if profile[1].endswith("local") else "2") and res["capture"]["gpu"] == "1"
    assert res["prune"]["gres"] == "gpu:a100:1" and "gpu" not in res["prune"]
    # `gpus` (which the schema allows) reaches the executors as `gpu`: the Slurm plugin turns only gpu or a gres into
    # sbatch --gpus, and the local pool counts only gpu; a bare `gpus` asked Slurm for no GPU at all
    res = dry("gpus", **AUTO, resources={"generate": {"gpus": 2}, "capture": {"gpus": 1}})
    assert res["generate"]["gpu"] == ("1" if profile[1].endswith("local") else "2") and "gpus" not in res["generate"]
    assert res["capture"]["gpu"] == "1" and "gpus" not in res["capture"]


def test_the_readme_cache_command_names_every_cached_rule():
    """On Slurm a bare --cache reaches no job (README, Between-workflow cache): the README's command names the rules,
    and must name every rule marked ``cache: True``."""
    cached = set()
    for smk in (REPO / "workflow" / "rules").glob("*.smk"):
        for block in re.split(r"^rule ", smk.read_text(), flags=re.M)[1:]:
            if re.search(r"^    cache: True$", block, re.M):
                cached.add(block.split(":", 1)[0])
    assert cached and set(readme_cache_rules()) == cached, (sorted(cached), readme_cache_rules())
