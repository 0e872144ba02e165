"""Adapter: rule generate -> prunetts.jobs.generate."""

import _bootstrap  # noqa: F401  (this checkout's library first on sys.path)

from prunetts import jobs

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
        # from the config: params.generation (the rerun trigger) leaves out the run settings the samples do not
        # depend on, which the job needs too
        generation={k: v for k, v in sm.config["generation"].items() if k not in ("budgets", "seeds")},
        model_cfg=sm.params.model_cfg,
        threads=sm.threads,
    )
