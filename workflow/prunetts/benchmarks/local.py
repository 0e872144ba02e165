"""Reading benchmark records from a local JSON Lines / Parquet / CSV file or a Hugging Face dataset id."""

from __future__ import annotations

from pathlib import Path

from prunetts.records import SUFFIXES, InputFileError, hub_dataset
from prunetts.records import read_records as read_file


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
    return list(hub_dataset(source, hf_config, hf_split, revision))


def field(record: dict, names: tuple[str, ...], *, bench: str, source: str, index: int):
    """The value of the first of ``names`` that ``record`` holds (not null, not blank). Otherwise one line naming the
    benchmark, the source, the record and the fields it has (a KeyError traceback used to end the job, e.g. for a
    file with ``Problem``/``Answer`` columns or a null answer). Field names only: never a value (GPQA's text must not
    reach a log)."""
    for name in names:
        value = record.get(name)
        if value is not None and str(value).strip() != "":
            return value
    wanted = " or ".join(repr(n) for n in names)
    have = ", ".join(repr(k) for k in sorted(record)) or "none"
    raise InputFileError(
        f"benchmarks.{bench}: record {index} of {source} has no {wanted} (null or blank counts as missing; its fields:"
        f" {have}); give a file with the default dataset's fields (config/README.md, benchmarks)"
    )


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
