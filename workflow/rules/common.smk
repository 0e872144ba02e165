# Validation, wildcard constraints and input functions. No other logic lives in .smk files.
from pathlib import Path

from snakemake.utils import validate

from prunetts.config import check, variants
from prunetts.versions import IMPL_VERSION

validate(config, workflow.source_path("../schemas/config.schema.yaml"))
check(config)

MODELS = list(config["models"])
BENCHES = list(config["benchmarks"])
SEEDS = config["generation"]["seeds"]
VARIANTS = variants(config)
ENV = "../../envs/prunetts.yaml"


wildcard_constraints:
    model=r"[A-Za-z0-9_.\-]+",
    variant=r"[a-z0-9.\-]+",
    bench=r"[a-z0-9_]+",
    seed=r"\d+",


def model_cfg(wildcards):
    return config["models"][wildcards.model]


def base_model_path(wildcards):
    return model_cfg(wildcards)["path"]


def base_model_input(wildcards):
    """The dense checkpoint as an input when it is a local directory (a hub id is not a file)."""
    path = base_model_path(wildcards)
    return [path] if Path(path).is_dir() else []


def variant_model_path(wildcards):
    if wildcards.variant == "dense":
        return base_model_path(wildcards)
    return f"results/models/model~{wildcards.model}/variant~{wildcards.variant}"


def variant_model_input(wildcards):
    if wildcards.variant == "dense":
        return base_model_input(wildcards)
    return [variant_model_path(wildcards)]


def prune_capture_input(wildcards):
    """Wanda needs the dense activation capture; magnitude does not."""
    if wildcards.variant.startswith("wanda-"):
        return {
            "capture": f"results/capture/model~{wildcards.model}/linear_stats.parquet"
        }
    return {}


def generation_params(wildcards):
    g = config["generation"]
    return {k: g[k] for k in g if k not in ("budgets", "seeds")}
