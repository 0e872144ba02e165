# prunetts: prune reasoning LLMs and measure what pruning does to test-time scaling.
# Default config = the embedded CPU demo. Paper grid: --configfile config/paper.yaml. Every key: config/README.md


import sys
from pathlib import Path

from snakemake.utils import min_version

min_version("9.0")

# this checkout's library first, as the jobs' scripts/_bootstrap.py does: the DAG (config checks, variants, the
# IMPL_VERSION params that trigger reruns) must come from the same code as the jobs, not from whichever checkout the
# environment's prunetts is installed from
sys.path.insert(0, str(Path(workflow.basedir) / "workflow"))


# The embedded demo's config, unless a config is given with --configfile: that one then stands alone (filled with the
# schema's defaults) instead of being merged into the demo's, whose model, benchmark and CPU settings would leak in.
if not workflow.overwrite_configfiles:

    configfile: "config/config.yaml"


report: "workflow/report/workflow.rst"


include: "workflow/rules/common.smk"
include: "workflow/rules/benchmarks.smk"
include: "workflow/rules/calibration.smk"
include: "workflow/rules/pruning.smk"
include: "workflow/rules/generation.smk"
include: "workflow/rules/report.smk"


rule all:
    default_target: True
    input:
        "results/tables/scores.parquet",
        "results/tables/summary.md",
        "results/tables/stats.parquet",
        "results/tables/summary.html",
        expand(
            "results/figures/{figure}/model~{model}_bench~{bench}.png",
            figure=["accuracy_vs_budget", "thinking_tokens"],
            model=MODELS,
            bench=BENCHES,
        ),
        expand(
            "results/figures/diff_vs_dense/model~{model}_bench~{bench}.png",
            model=PRUNED_MODELS if "dense" in VARIANTS else [],
            bench=BENCHES,
        ),
        expand(
            "results/figures/layer_sparsity/model~{model}.png",
            model=PRUNED_MODELS,
        ),
