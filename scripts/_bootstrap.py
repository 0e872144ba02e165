"""Imported first by every script: puts this checkout's library (``workflow/``) at the front of ``sys.path``.

Snakemake runs a script with the script's own folder on ``sys.path``, not the library's. In the main virtual
environment prunetts is installed (editable), but a ``--sdm conda`` environment cannot install it: Snakemake creates
the environment from a copy of ``envs/*.yaml`` inside ``.snakemake/conda/``, where a relative ``pip -e ../`` would
point at ``.snakemake/``. So the scripts import the library from the checkout they belong to, whichever environment
runs them.
"""

import sys
from pathlib import Path

_LIBRARY = str(Path(__file__).resolve().parents[1] / "workflow")
# first, even when already on the path: Snakemake's script preamble appends its own process's path (this library
# among it) after the environment's, where an editable install of another checkout comes first
if sys.path[:1] != [_LIBRARY]:
    sys.path.insert(0, _LIBRARY)
