"""envs/prunetts.yaml (for --sdm conda) must list the same requirements as pyproject.toml."""

import tomllib
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]


def test_conda_env_matches_pyproject():
    deps = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["dependencies"]
    env = yaml.safe_load((REPO / "envs" / "prunetts.yaml").read_text())
    pip = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    pip = [p for p in pip if not p.startswith("-e")]
    # torch is a range in pyproject (GPU users keep their CUDA build) and the tested CPU pin in the env
    assert "torch==2.13.0" in pip and "torch>=2.6" in deps
    assert sorted(p for p in pip if not p.startswith("torch")) == sorted(d for d in deps if not d.startswith("torch"))


def test_vllm_env_matches_pyproject_and_the_gpu_extra():
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    env = yaml.safe_load((REPO / "envs" / "vllm.yaml").read_text())
    pip = [p for p in next(d["pip"] for d in env["dependencies"] if isinstance(d, dict)) if not p.startswith("-e")]
    want = [d for d in project["dependencies"] if not d.startswith("torch")] + project["optional-dependencies"]["gpu"]
    assert sorted(pip) == sorted(want)  # torch comes from vllm's own pin
