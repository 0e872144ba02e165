"""Adapter: rule plot_layers -> prunetts.jobs.plot_layers."""

import _bootstrap  # noqa: F401  (this checkout's library first on sys.path)

from prunetts import jobs

sm = snakemake  # noqa: F821
with jobs.job_logging(sm.log[0]):
    jobs.plot_layers(list(sm.input.sparsity), list(sm.input.scores), sm.output[0], model=sm.wildcards.model)
