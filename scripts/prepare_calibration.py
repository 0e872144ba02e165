"""Adapter: rule prepare_calibration -> prunetts.jobs.prepare_calibration."""

import _bootstrap  # noqa: F401  (this checkout's library first on sys.path)

from prunetts import jobs

sm = snakemake  # noqa: F821
with jobs.job_logging(sm.log[0]):
    jobs.prepare_calibration(
        sm.params.model_path,
        sm.output[0],
        model=sm.params.model,
        calibration=sm.params.calibration,
        trust_remote_code=sm.params.trust_remote_code,
    )
