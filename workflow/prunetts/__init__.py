"""prunetts: prune reasoning LLMs and measure what pruning does to their test-time scaling.

Library behind the Snakemake workflow; importing it is cheap (torch and transformers load lazily in the modules
that need them), so the Snakefile and light jobs such as grading never pay for them.
"""

__version__ = "0.1.0"
