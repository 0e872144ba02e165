"""Adapter: rule generate -> prunetts.jobs.generate."""

from prunetts import jobs
from prunetts.config import GENERATION_RUN_SETTINGS

sm = snakemake  # noqa: F821
with jobs.job_logging(sm.log[0], sm.threads, sm.resources):
    jobs.generate(
        sm.params.model_path,
        sm.input.bench,
        sm.output[0],
        model=sm.wildcards.model,
        variant=sm.wildcards.variant,
        bench=sm.wildcards.bench,
        seed=int(sm.wildcards.seed),
        budgets=sm.params.budgets,
        # run settings from the config: not params, since the samples do not depend on them
        generation={**sm.params.generation, **{k: sm.config["generation"][k] for k in GENERATION_RUN_SETTINGS}},
        model_cfg=sm.params.model_cfg,
        threads=sm.threads,
    )
