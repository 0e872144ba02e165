"""Calibration windows (token ids) for activation capture.

``paper`` mode reproduces Wanda / TTS-Pruning ``get_c4``: with ``random.Random(seed)``, draw random
documents until one tokenizes to more than ``seqlen`` tokens, then take ``seqlen`` tokens from a random start in
``[0, len - seqlen - 1]``; repeat for each window. (Same draw sequence as ``random.seed(seed)`` + ``random.randint``
in the reference; the reference uses the slow tokenizer, we use the fast one.) Documents are tokenized as the reference
does, with the tokenizer's special tokens: a Llama tokenizer's BOS counts towards the length test and can open a
window that starts at 0; Qwen tokenizers add none.

``pack`` mode is for corpora of short documents (the demo task): documents in a seeded order, joined by EOS, cut
into consecutive windows.

Sources: ``demo`` (the demo task's calibration split), ``c4`` (``allenai/c4`` file
``en/c4-train.00000-of-01024.json.gz`` from the hub cache, downloaded once; ``c4@<commit sha>`` pins the dataset's
commit), ``s1k`` (``simplescaling/s1K-1.1``, s1.1's 1000 reasoning traces: LayerIF's default training texts in
config/paper.yaml; ``s1k@<commit sha>`` pins it), or a local ``.jsonl``/``.json``/``.parquet``/``.csv``
file with a text column.
"""

from __future__ import annotations

import logging
import random
from pathlib import Path

from prunetts.records import SUFFIXES, read_records

log = logging.getLogger(__name__)

C4_FILE = "en/c4-train.00000-of-01024.json.gz"
S1K_FILE = "data/train-00000-of-00001.parquet"
# text sources named by a short name (``name`` or ``name@<revision>``): the hub dataset and the one file read of it
HUB_TEXTS = {"c4": ("allenai/c4", C4_FILE), "s1k": ("simplescaling/s1K-1.1", S1K_FILE)}
# an s1K-1.1 record as one text: the problem, DeepSeek-R1's thinking and its answer (what s1.1 was trained on), plain
# text without any model's chat markup, so that the same texts serve s1.1-7B and Qwen3-8B
S1K_FIELDS = ("question", "deepseek_thinking_trajectory", "deepseek_attempt")


class CalibrationError(ValueError):
    pass


def hub_texts(source: str | None) -> str | None:
    """The name (``c4``, ``s1k``) of the hub text source ``source`` names, with or without ``@<revision>``; else
    None."""
    name = (source or "").split("@", 1)[0]
    return name if name in HUB_TEXTS else None


def _s1k_records(rows: list[dict], source: str) -> list[dict]:
    """s1K-1.1's records with ``text`` = its three fields joined by blank lines (``S1K_FIELDS``)."""
    missing = [f for f in S1K_FIELDS if rows and f not in rows[0]]
    if not rows or missing:
        raise CalibrationError(
            f"{source}: not s1K-1.1's layout (no {', '.join(missing) or 'records'}); pin a revision that has it "
            "(s1k@<commit sha>) or give a local file of texts"
        )
    return [dict(r, text="\n\n".join(str(r[f] or "").strip() for f in S1K_FIELDS)) for r in rows]


# where a user sets the text field of each kind of source: the fix a field error names
CALIBRATION_FIELD = "calibration.text_field, CLI --text-field"


def load_texts(
    source: str, text_field: str = "text", limit: int | None = None, field_setting: str = CALIBRATION_FIELD
) -> list[str]:
    """The texts of ``source``; ``field_setting``: where the caller's user sets ``text_field`` (named by errors)."""
    if source == "demo":
        from prunetts.demo.render import calibration_texts

        return calibration_texts(limit or 2000)
    name = hub_texts(source)
    if name:
        from prunetts.checkpoint import split_ref
        from prunetts.records import hub_dataset_file, read_jsonl_gz

        repo, filename = HUB_TEXTS[name]
        revision = split_ref(source)[1]  # c4@<commit sha> pins the allenai/c4 commit
        path = hub_dataset_file(repo, filename, revision)
        if name == "c4":
            # the file itself, read in order: the records of the reference's load_dataset("allenai/c4", data_files=...)
            rows = read_jsonl_gz(path, limit)
        else:
            rows = _s1k_records(read_records(path), source)[:limit]
        if not rows or text_field not in rows[0]:
            found = ", ".join(rows[0]) if rows else "none"
            raise CalibrationError(
                f"{source}: no '{text_field}' field (fields: {found}); set the text field ({field_setting})"
            )
        return [r[text_field] for r in rows]
    path = Path(source)
    if not path.is_file():
        raise CalibrationError(f"{source}: not 'demo', 'c4', 's1k' (either @<commit>) or an existing file")
    if path.suffix not in SUFFIXES:
        raise CalibrationError(f"{path}: unsupported calibration file type (use .jsonl, .json, .parquet or .csv)")
    rows = read_records(path)  # errors name the file (and the line of a JSON Lines file) in one line
    problem = _first_record_problem(path, rows, text_field, field_setting)
    if problem:
        raise CalibrationError(problem)
    fix = f"set the text field ({field_setting})"
    texts = []
    for n, r in enumerate(rows, 1):  # every record, not only the first: a bad one would otherwise crash or slip in
        value = r.get(text_field)
        if not isinstance(value, str):
            kind = "null" if value is None else f"a {type(value).__name__}"
            what = "has no" if text_field not in r else f"has {kind}, not a string, as its"
            raise CalibrationError(f"{path}: record {n} {what} '{text_field}' field; fix or remove it, or {fix}")
        texts.append(value)
    return texts[:limit] if limit else texts


def text_field_problem(source: str, text_field: str, field_setting: str) -> str | None:
    """A cheap look at a local text file before any job (the config check): its first record must have
    ``text_field``. The problem in one line, else None; a job that reads the file still checks every record
    (``load_texts``)."""
    from prunetts.records import InputFileError

    try:
        rows = read_records(source, limit=1)
    except InputFileError as e:
        return str(e)
    return _first_record_problem(Path(source), rows, text_field, field_setting)


def _first_record_problem(path: Path, rows: list[dict], text_field: str, field_setting: str) -> str | None:
    """No records, or a first record without ``text_field``: the one line that says so."""
    if not rows:
        return f"{path}: no records in the file; give a file of texts"
    if text_field not in rows[0]:
        found = ", ".join(map(repr, rows[0])) or "none"
        return f"{path}: no '{text_field}' field in the records (fields: {found}); set the text field ({field_setting})"
    return None


_TOO_SHORT_FIX = (
    "lower the window length (calibration.seqlen, --seqlen) or pack short texts together (calibration.mode: pack, "
    "--calibration-mode pack)"
)


def paper_windows(texts: list[str], tokenizer, n: int, seqlen: int, seed: int) -> list[list[int]]:
    # a token covers at least one UTF-8 byte (byte-level BPE, SentencePiece with byte fallback), plus a few special
    # tokens: when no text can exceed seqlen, say so now instead of tokenizing 100 x len(texts) random draws (stops
    # at the first text that might, so a real corpus is not encoded whole)
    if not any(len(t.encode()) + 8 > seqlen for t in texts):
        raise CalibrationError(f"calibration: no text is longer than seqlen={seqlen} tokens; {_TOO_SHORT_FIX}")
    rng = random.Random(seed)
    long_ids: dict[int, list[int]] = {}  # the token ids of each drawn text long enough for a window
    short: set[int] = set()  # the drawn texts that are not: each text is tokenized at most once
    out = []
    for _ in range(n):
        for _attempt in range(100 * len(texts)):
            i = rng.randint(0, len(texts) - 1)
            if i in short:
                continue
            ids = long_ids.get(i)
            if ids is None:
                # add_special_tokens as the reference's plain ``tokenizer(text)``: same lengths, same windows
                ids = tokenizer(texts[i], add_special_tokens=True, verbose=False)["input_ids"]
                if len(ids) <= seqlen:
                    short.add(i)
                    if len(short) == len(texts):  # every text tried: none can give a window
                        break
                    continue
                long_ids[i] = ids
            break
        else:
            break
        if i in short:
            break
        start = rng.randint(0, len(ids) - seqlen - 1)
        out.append(ids[start : start + seqlen])
    if len(out) < n:
        raise CalibrationError(f"calibration: too few documents longer than seqlen={seqlen} tokens; {_TOO_SHORT_FIX}")
    if 2 * len(long_ids) < n:  # drawn with replacement, as the reference: on C4 nearly every window is its own text
        log.warning(
            "calibration: the %d windows come from %d distinct text(s) longer than seqlen=%d (%d of the %d texts "
            "drawn were shorter), so the pruning statistics rest on few texts; give more long texts, or pack short "
            "ones together (calibration.mode: pack, --calibration-mode pack)",
            n,
            len(long_ids),
            seqlen,
            len(short),
            len(long_ids) + len(short),
        )
    return out


def packed_windows(texts: list[str], tokenizer, n: int, seqlen: int, seed: int) -> list[list[int]]:
    order = list(range(len(texts)))
    random.Random(seed).shuffle(order)
    sep = [tokenizer.eos_token_id] if tokenizer.eos_token_id is not None else []
    stream: list[int] = []
    for i in order:
        stream += tokenizer(texts[i], add_special_tokens=False, verbose=False)["input_ids"] + sep
        if len(stream) >= n * seqlen:
            break
    if len(stream) < n * seqlen:
        raise CalibrationError(
            f"calibration: the texts give {len(stream)} tokens, fewer than n_samples x seqlen = {n * seqlen}; "
            "lower the number or length of the windows (calibration.n_samples / seqlen, --n-samples / --seqlen)"
        )
    return [stream[i * seqlen : (i + 1) * seqlen] for i in range(n)]


def build_rows(
    model: str, tokenizer, source: str, mode: str, n: int, seqlen: int, seed: int, text_field: str, impl_version: int
) -> list[dict]:
    texts = load_texts(source, text_field)
    make = paper_windows if mode == "paper" else packed_windows
    windows = make(texts, tokenizer, n, seqlen, seed)
    return [
        dict(model=model, impl_version=impl_version, source=source, seed=seed, sample=i, input_ids=w)
        for i, w in enumerate(windows)
    ]
