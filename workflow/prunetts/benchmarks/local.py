"""Reading benchmark records from a local JSON Lines / Parquet / CSV file or a Hugging Face dataset id."""

from __future__ import annotations

import logging
from pathlib import Path

from prunetts.checkpoint import is_commit
from prunetts.records import SUFFIXES, InputFileError
from prunetts.records import read_records as read_file

log = logging.getLogger("prunetts")


def read_records(
    source: str, hf_split: str = "test", hf_config: str | None = None, revision: str | None = None
) -> list[dict]:
    """Records of a local file, or of a hub dataset at ``revision`` (a commit sha, tag or branch; None = the default
    branch). Errors are one line (``InputFileError``)."""
    path = Path(source)
    if path.suffix in SUFFIXES:
        if revision:
            raise InputFileError(f"{source}: revision {revision!r} pins hub datasets only, not a local file")
        return read_file(path)  # errors name the file (and the line of a JSON Lines file) in one line
    from datasets import load_dataset
    from datasets.exceptions import DatasetsError

    at = f"{source}@{revision}" if revision else source
    try:
        ds = load_dataset(source, hf_config, split=hf_split, revision=revision)
    except (OSError, ValueError, ConnectionError, DatasetsError) as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise InputFileError(
            f"{at}: cannot load the dataset ({type(e).__name__}: {first[:300]}); check the id, the revision, the "
            "network (or HF_HOME's cache when offline), or give a local file"
        ) from None
    # a hub dataset's cache folder is named by its commit: the record of an unpinned run, and the check of a pinned
    # one (offline, datasets falls back to the newest cached copy whatever the revision asked for)
    folders = sorted({str(Path(f["filename"]).parent) for f in ds.cache_files})
    if revision and is_commit(revision) and folders and not any(revision in f for f in folders):
        raise InputFileError(
            f"{at}: datasets returned another commit's cached copy ({folders[0]}), not revision {revision}; with "
            "HF_HUB_OFFLINE set, download that revision first (online), or unpin"
        )
    log.info("%s: %d records from %s", at, len(ds), folders)
    return list(ds)


def gold_string(value) -> str:
    """A gold answer as a string; an integral number ("025", 27.0, "27.0") becomes its integer ("25", "27"),
    the harness's ``str(int(answer))`` for digit strings."""
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    text = str(value).strip()
    digits = text[1:] if text.startswith("-") else text
    whole, _, frac = digits.partition(".")
    if whole.isascii() and whole.isdigit() and (not frac or (frac.isascii() and set(frac) == {"0"})):
        return str(int(text.split(".", 1)[0]))
    return text
