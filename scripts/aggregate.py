"""Adapter: rule aggregate -> prunetts.jobs.aggregate."""

from prunetts import jobs

sm = snakemake  # noqa: F821
with jobs.job_logging(sm.log[0]):
    jobs.aggregate(list(sm.input), sm.output.scores, sm.output.summary_md, sm.output.summary_csv)
