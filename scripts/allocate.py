"""Adapter: rule allocate -> prunetts.jobs.allocate."""

import _bootstrap  # noqa: F401  (this checkout's library first on sys.path)

from prunetts import jobs

sm = snakemake  # noqa: F821
with jobs.job_logging(sm.log[0]):
    jobs.allocate(
        sm.params.model_path,
        sm.input.get("scores"),
        sm.output[0],
        model=sm.wildcards.model,
        variant=sm.wildcards.variant,
        options=sm.params.options,
    )
