"""Adapter: rule plot_thinking -> prunetts.jobs.plot_thinking."""

import _bootstrap  # noqa: F401  (this checkout's library first on sys.path)

from prunetts import jobs

sm = snakemake  # noqa: F821
with jobs.job_logging(sm.log[0]):
    jobs.plot_thinking(list(sm.input), sm.output[0], model=sm.wildcards.model, bench=sm.wildcards.bench)
