"""Adapter: rule capture -> prunetts.jobs.capture."""

import _bootstrap  # noqa: F401  (this checkout's library first on sys.path)

from prunetts import jobs

sm = snakemake  # noqa: F821
with jobs.job_logging(sm.log[0], sm.threads, sm.resources):
    jobs.capture(
        sm.params.model_path,
        sm.input.calibration,
        sm.output.linear,
        sm.output.layers,
        model=sm.params.model,
        trust_remote_code=sm.params.trust_remote_code,
        threads=sm.threads,
        **sm.params.capture,
    )
