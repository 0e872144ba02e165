"""Adapter: rule prune -> prunetts.jobs.prune."""

import _bootstrap  # noqa: F401  (this checkout's library first on sys.path)

from prunetts import jobs

sm = snakemake  # noqa: F821
with jobs.job_logging(sm.log[0], sm.threads, sm.resources):
    jobs.prune(
        sm.params.model_path,
        sm.input.allocation,
        sm.input.get("calibration"),
        sm.input.get("capture"),
        sm.output.checkpoint,
        sm.output.sparsity,
        model=sm.wildcards.model,
        variant=sm.wildcards.variant,
        wanda=sm.params.wanda,
        trust_remote_code=sm.params.trust_remote_code,
        threads=sm.threads,
        # run settings from the config; as params (a rerun trigger) only where they change the result
        **{k: sm.config["capture"][k] for k in ("batch_size", "device", "dtype")},
    )
