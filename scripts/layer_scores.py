"""Adapter: rule layer_scores -> prunetts.jobs.layer_scores."""

import _bootstrap  # noqa: F401  (this checkout's library first on sys.path)

from prunetts import jobs

sm = snakemake  # noqa: F821
with jobs.job_logging(sm.log[0], sm.threads):
    jobs.layer_scores(
        sm.params.model_path,
        sm.input.scores_input,
        sm.output[0],
        model=sm.params.model,
        scorer=sm.params.scorer,
        owl_m=sm.params.owl_m,
        threads=sm.threads,
    )
