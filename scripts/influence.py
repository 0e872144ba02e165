"""Adapter: rule influence -> prunetts.jobs.influence."""

import _bootstrap  # noqa: F401  (this checkout's library first on sys.path)

from prunetts import jobs

sm = snakemake  # noqa: F821
with jobs.job_logging(sm.log[0], sm.threads, sm.resources):
    jobs.influence(
        sm.params.model_path,
        sm.output[0],
        model=sm.params.model,
        influence=sm.params.influence,
        calibration=sm.params.calibration,
        trust_remote_code=sm.params.trust_remote_code,
        threads=sm.threads,
    )
