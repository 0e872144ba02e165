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


def test_scripts_import_the_library_of_their_checkout_without_an_installed_package():
    """A --sdm conda environment holds only the dependencies (a relative `pip -e ../` would resolve inside
    .snakemake/conda/, where Snakemake copies the env file): every script imports prunetts through _bootstrap."""
    import subprocess
    import sys

    for env in ("prunetts.yaml", "vllm.yaml"):
        assert "-e " not in (REPO / "envs" / env).read_text(), env
    for script in sorted((REPO / "scripts").glob("[a-z]*.py")):
        lines = script.read_text().splitlines()
        first = next(i for i, line in enumerate(lines) if line.startswith(("import ", "from ")))
        assert lines[first].startswith("import _bootstrap"), script
    # -S: no site-packages, so no installed prunetts; Snakemake puts the script's folder on sys.path (appended)
    code = "import sys; sys.path.append('scripts'); import _bootstrap, prunetts; print(prunetts.__file__)"
    out = subprocess.run([sys.executable, "-S", "-c", code], cwd=REPO, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == str(REPO / "workflow" / "prunetts" / "__init__.py")


def test_a_pruned_checkpoint_records_the_versions_that_made_it():
    from importlib.metadata import version

    from prunetts import __version__
    from prunetts.versions import IMPL_VERSION, package_versions

    assert package_versions() == {
        "prunetts": __version__,
        "prune_impl": IMPL_VERSION["prune"],
        "influence_impl": IMPL_VERSION["influence"],
        **{pkg: version(pkg) for pkg in ("torch", "transformers", "safetensors")},
    }
