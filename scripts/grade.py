"""Adapter: rule grade -> prunetts.jobs.grade."""

import _bootstrap  # noqa: F401  (this checkout's library first on sys.path)

from prunetts import jobs

sm = snakemake  # noqa: F821
with jobs.job_logging(sm.log[0]):
    jobs.grade(
        sm.input.generations,
        sm.input.bench,
        sm.output[0],
        bench=sm.wildcards.bench,
        workers=sm.threads,
        timeout_s=sm.params.timeout_s,
        delimiters=sm.params.delimiters,
    )
