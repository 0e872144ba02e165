"""Adapter: rule generate -> prunetts.jobs.generate."""

from prunetts import jobs

sm = snakemake  # noqa: F821
with jobs.job_logging(sm.log[0], sm.threads):
    jobs.generate(
        sm.params.model_path,
        sm.input.bench,
        sm.output[0],
        model=sm.wildcards.model,
        variant=sm.wildcards.variant,
        bench=sm.wildcards.bench,
        seed=int(sm.wildcards.seed),
        budgets=sm.params.budgets,
        generation=sm.params.generation,
        model_cfg=sm.params.model_cfg,
        threads=sm.threads,
    )
