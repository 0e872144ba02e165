"""Adapter: rule aggregate -> prunetts.jobs.aggregate."""

import _bootstrap  # noqa: F401  (this checkout's library first on sys.path)

from prunetts import jobs

sm = snakemake  # noqa: F821
with jobs.job_logging(sm.log[0]):
    out = sm.output
    jobs.aggregate(list(sm.input), out.scores, out.summary_md, out.summary_csv, out.stats, out.summary_html)
