"""Adapter: rule prepare_benchmark -> prunetts.jobs.prepare_benchmark."""

import _bootstrap  # noqa: F401  (this checkout's library first on sys.path)

from prunetts import jobs

sm = snakemake  # noqa: F821
with jobs.job_logging(sm.log[0]):
    jobs.prepare_benchmark(sm.output[0], bench=sm.params.bench, options=sm.params.options)
