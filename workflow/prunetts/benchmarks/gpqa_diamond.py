"""GPQA-Diamond (Rein et al. 2023, 198 four-option questions): default source ``Idavidrein/gpqa`` (config
``gpqa_diamond``, split ``train``; gated on the Hub), or a local file with the CSV's ``Question``, ``Correct Answer``,
``Incorrect Answer 1..3`` and ``Record ID`` fields.

Prompt = ``"{Question}\\n\\nA) …\\nB) …\\nC) …\\nD) …"`` (the paper harness's ``gpqa_diamond_openai`` template);
gold = the letter of the correct answer; graded as ``choice`` (one letter, no judge).

Option order: the harness shuffles ``[Incorrect 1, Incorrect 2, Incorrect 3, Correct]`` with Python's global
``random`` (deterministic but dependent on library versions). Deviations: we shuffle that list with an explicit
``random.Random`` seeded by a SHA-256 of (``shuffle_seed``, the question's Record ID), so a question's order is
reproducible, independent of the others and of the file order, and ``metadata`` stores it: ``permutation[k]`` = the
index into that list of the option shown as letter k, and ``choices`` = the source field names in letter order. The
question and options are stripped of surrounding whitespace (94 values in the official CSV carry stray spaces or
newlines, which would break the one-line-per-option layout); inner text is unchanged.
"""

from __future__ import annotations

import hashlib
import random

from prunetts.benchmarks.local import field, read_records

HF_ID = "Idavidrein/gpqa"
HF_CONFIG = "gpqa_diamond"
KIND = "choice"
LETTERS = "ABCD"
FIELDS = ("Incorrect Answer 1", "Incorrect Answer 2", "Incorrect Answer 3", "Correct Answer")  # the harness order
CORRECT = FIELDS.index("Correct Answer")


def permutation(shuffle_seed: int, question_id: str) -> list[int]:
    """Indices into ``FIELDS`` in letter order, from an RNG seeded by a stable hash of (seed, question id)."""
    digest = hashlib.sha256(f"{shuffle_seed}\x00{question_id}".encode()).digest()
    order = list(range(len(FIELDS)))
    random.Random(int.from_bytes(digest[:8], "big")).shuffle(order)
    return order


def format_prompt(question: str, options: list[str]) -> str:
    return question + "\n\n" + "\n".join(f"{letter}) {text}" for letter, text in zip(LETTERS, options, strict=True))


def load(source: str | None = None, revision: str | None = None, shuffle_seed: int = 0) -> list[dict]:
    out = []
    where = source or HF_ID
    for i, r in enumerate(read_records(where, hf_split="train", revision=revision, hf_config=HF_CONFIG)):
        question, *texts = (
            str(field(r, (f,), bench="gpqa_diamond", source=where, index=i)) for f in ("Question", *FIELDS)
        )
        qid = str(r.get("Record ID") or i)
        perm = permutation(shuffle_seed, qid)
        options = [texts[j].strip() for j in perm]
        meta = {
            "record_id": qid,
            "shuffle_seed": shuffle_seed,
            "permutation": perm,
            "choices": [FIELDS[j] for j in perm],
        }
        meta.update(
            {k: r[src] for k, src in (("domain", "High-level domain"), ("subdomain", "Subdomain")) if r.get(src)}
        )
        out.append(
            dict(
                problem_id=qid,
                prompt=format_prompt(question.strip(), options),
                gold=LETTERS[perm.index(CORRECT)],
                metadata=meta,
            )
        )
    return out
