"""Adapter: rule plot_accuracy -> prunetts.jobs.plot."""

import _bootstrap  # noqa: F401  (this checkout's library first on sys.path)

from prunetts import jobs

sm = snakemake  # noqa: F821
with jobs.job_logging(sm.log[0]):
    jobs.plot(sm.input[0], sm.output[0], model=sm.wildcards.model, bench=sm.wildcards.bench)
