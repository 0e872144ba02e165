"""Reading a user's data files (benchmark sources, calibration and influence texts): JSON Lines, JSON, Parquet, CSV;
and hub datasets at a revision (``hub_dataset``).

Every failure is an ``InputFileError`` whose one line names the file, what is wrong with it (for JSON Lines the line
number) and the fix, instead of a decoder's traceback.
"""

from __future__ import annotations

import json
import logging
import threading
from pathlib import Path

log = logging.getLogger("prunetts")

SUFFIXES = (".jsonl", ".json", ".parquet", ".csv")


class InputFileError(ValueError):
    """A user's data file is missing, truncated or garbled: the message is one line naming the file and the fix."""


def hub_dataset(
    source: str,
    hf_config: str | None = None,
    split: str = "train",
    revision: str | None = None,
    data_files: dict | None = None,
):
    """The ``datasets.Dataset`` of a Hugging Face dataset split at ``revision`` (a commit sha, tag or branch; None = the
    default branch), through ``datasets.load_dataset``. A full-sha revision is checked against the cache folder
    actually read: offline, ``datasets`` falls back to the newest cached copy whatever the revision asked for."""
    from datasets import load_dataset
    from datasets.exceptions import DatasetsError

    from prunetts.checkpoint import first_line, hub_transport_errors, is_commit, looks_local, model_ref

    at = model_ref(source, revision)
    try:
        ds = load_dataset(source, hf_config, split=split, revision=revision, data_files=data_files)
    # RuntimeError: a hub dataset that still loads through a script ("Dataset scripts are no longer supported")
    except (OSError, ValueError, ConnectionError, DatasetsError, RuntimeError, *hub_transport_errors()) as e:
        folder = Path(source).expanduser()
        if folder.is_dir():  # a local copy of a dataset repo: the hub advice (id, network, cache) would mislead
            raise InputFileError(
                f"{source}: cannot load split {split!r} from this local folder ({type(e).__name__}: "
                f"{first_line(e)[:300]}); give the split's file itself ({' / '.join(SUFFIXES)}), or a folder whose "
                f"file names say the split (e.g. {split}.jsonl or data/{split}-00000-of-00001.parquet)"
            ) from None
        if looks_local(source):
            raise InputFileError(
                f"{source}: no such file or folder; give an existing local file ({' / '.join(SUFFIXES)}) or a hub "
                "dataset id (org/name)"
            ) from None
        raise InputFileError(
            f"{at}: cannot load the dataset ({type(e).__name__}: {first_line(e)[:300]}); check the id, the revision, "
            "the network (or HF_HOME's cache when offline), or give a local file"
        ) from None
    # the cache folder of a hub dataset is named by its commit: the record of an unpinned run, the check of a pinned one
    folders = sorted({str(Path(f["filename"]).parent) for f in ds.cache_files})
    if is_commit(revision) and folders and not any(revision in f for f in folders):
        raise InputFileError(
            f"{at}: datasets returned another commit's cached copy ({folders[0]}), not revision {revision}; with "
            "HF_HUB_OFFLINE set, download that revision first (online), or unpin"
        )
    log.info("%s: %d records from %s", at, len(ds), folders)
    return ds


class _QuietInThisThread(logging.Filter):
    """Drops the records of the thread that set ``here.on`` (other threads' warnings pass)."""

    def __init__(self):
        super().__init__()
        self.here = threading.local()

    def filter(self, record) -> bool:
        return not getattr(self.here, "on", False)


_QUIET_HUB = _QuietInThisThread()


def hub_dataset_file(repo: str, filename: str, revision: str | None = None) -> Path:
    """The local copy of one file of a hub dataset at ``revision`` (None = the default branch), through
    ``huggingface_hub.hf_hub_download``: downloaded once into the hub cache, read from it offline (``HF_HUB_OFFLINE``;
    a full-sha revision gives that commit's copy or an error, never another commit's). Its folder is named by the
    commit. ``datasets.load_dataset(repo, data_files=...)`` cannot serve this offline: the cache folder of a
    ``data_files`` load is named by a hash of the files resolved online, which offline it cannot recompute
    (huggingface/datasets#6837)."""
    from huggingface_hub import hf_hub_download

    from prunetts.checkpoint import first_line, hub_transport_errors, model_ref

    at = model_ref(repo, revision)
    # without a cached copy the library retries a failed request five times (~25 s), warning each time: offline, that
    # buried the one line below under eleven. Dropped in this thread only, by a filter on the logger that warns.
    http_log = logging.getLogger("huggingface_hub.utils._http")
    if _QUIET_HUB not in http_log.filters:
        http_log.addFilter(_QUIET_HUB)
    _QUIET_HUB.here.on = True
    try:
        path = Path(hf_hub_download(repo, filename, repo_type="dataset", revision=revision))
    except (OSError, ValueError, *hub_transport_errors()) as e:
        raise InputFileError(
            f"{at}: cannot get {filename} ({type(e).__name__}: {first_line(e)[:300]}); check the revision and the "
            "network, or when offline (HF_HUB_OFFLINE) download it first (hf download --repo-type dataset), or give "
            "a local file"
        ) from None
    finally:
        _QUIET_HUB.here.on = False
    log.info("%s: %s from %s", at, filename, path)
    return path


def read_jsonl_gz(path: Path, limit: int | None = None) -> list[dict]:
    """The first ``limit`` (None: all) records of a gzip-compressed JSON Lines download; a damaged one is named for
    deletion."""
    try:
        return _jsonl(path, limit)
    except (OSError, EOFError, UnicodeDecodeError) as e:
        raise InputFileError(f"{path}: unreadable ({type(e).__name__}: {e}); delete it and download it again") from None


def read_records(path: str | Path, limit: int | None = None) -> list[dict]:
    """The records of a ``.jsonl`` / ``.json`` / ``.parquet`` / ``.csv`` file, each a dict; ``limit``: the first
    ones only, read without the rest (a ``.json`` file, one list, is read whole)."""
    path = Path(path)
    if path.suffix not in SUFFIXES:
        raise InputFileError(f"{path}: unsupported file type; use one of {', '.join(SUFFIXES)}")
    if not path.is_file():
        raise InputFileError(f"{path}: file not found; fix the path in the config")
    try:
        if path.suffix == ".jsonl":
            return _jsonl(path, limit)
        if path.suffix == ".json":
            return _json(path)[:limit]
        if path.suffix == ".parquet":
            return _parquet(path, limit)
        return _csv(path, limit)
    except UnicodeDecodeError as e:
        raise InputFileError(f"{path}: not UTF-8 text (byte {e.start}); re-export the file as UTF-8") from None


def _jsonl(path: Path, limit: int | None = None) -> list[dict]:
    import gzip

    out = []
    # -sig: a byte-order mark (Windows editors) is no part of line 1; .gz: a compressed download (C4's shard)
    opened = gzip.open(path, "rt", encoding="utf-8-sig") if path.suffix == ".gz" else path.open(encoding="utf-8-sig")
    with opened as f:
        for n, line in enumerate(f, 1):
            if limit is not None and len(out) >= limit:
                break
            if not line.strip():
                continue
            try:
                rec = json.loads(line)
            except json.JSONDecodeError as e:
                end = "" if line.endswith("\n") else " (the file ends inside this line: truncated?)"
                raise InputFileError(
                    f"{path}: line {n} is not valid JSON ({e.msg}, column {e.colno}){end}; fix or remove that line, "
                    "or restore the file"
                ) from None
            if not isinstance(rec, dict):
                kind = type(rec).__name__
                raise InputFileError(f"{path}: line {n} is a JSON {kind}, not an object; write one object per line")
            out.append(rec)
    return out


def _json(path: Path) -> list[dict]:
    try:
        data = json.loads(path.read_text(encoding="utf-8-sig"))
    except json.JSONDecodeError as e:
        raise InputFileError(
            f"{path}: not valid JSON ({e.msg}, line {e.lineno} column {e.colno}); fix or restore the file"
        ) from None
    if not isinstance(data, list) or not all(isinstance(r, dict) for r in data):
        raise InputFileError(f"{path}: must hold a JSON list of objects; convert it (or use JSON Lines)")
    return data


def _parquet(path: Path, limit: int | None = None) -> list[dict]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        if limit is not None:
            batch = next(pq.ParquetFile(path).iter_batches(batch_size=limit), None)
            return [] if batch is None else batch.to_pylist()[:limit]
        return pq.read_table(path).to_pylist()
    except (pa.ArrowException, OSError, ValueError) as e:
        raise InputFileError(f"{path}: not a readable Parquet file ({e}); restore or re-export it") from None


def _csv(path: Path, limit: int | None = None) -> list[dict]:
    import csv
    import itertools

    # a long document (a whole paper, a reasoning trace) exceeds the csv module's default 128 KiB field limit
    csv.field_size_limit(2**31 - 1)
    try:
        # utf-8-sig: Excel's "CSV UTF-8" starts with a byte-order mark, which would otherwise prefix the first column
        with path.open(newline="", encoding="utf-8-sig") as f:
            return list(itertools.islice(csv.DictReader(f), limit))
    except csv.Error as e:
        raise InputFileError(f"{path}: not a readable CSV file ({e}); restore or re-export it") from None
