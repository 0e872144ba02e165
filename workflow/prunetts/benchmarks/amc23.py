"""AMC 2023 (40 problems of AMC 12A/12B 2023): default source ``math-ai/amc23`` (split ``test``, the paper's
``amc23`` task), or a local file with ``question`` (or ``problem``) and ``answer`` fields. Prompt = the question as
is. problem_id = the record's ``id`` (not contiguous) else its position. The answer may be stored as a
float (27.0): gold is normalised to "27" when integral, and grading (``math``) also compares "27.0" = 27.
Deviation: the paper graded AMC23 by exact string match only (no judge), under which a float gold "-1.0" never
matches a model's "-1"; we compare integers numerically and fall back to math-verify.
"""

from __future__ import annotations

from prunetts.benchmarks.local import field, gold_string, read_records

HF_ID = "math-ai/amc23"
KIND = "math"


def load(source: str | None = None, revision: str | None = None) -> list[dict]:
    out = []
    where = source or HF_ID
    for i, r in enumerate(read_records(where, hf_split="test", revision=revision)):
        pid = r.get("id")
        out.append(
            dict(
                problem_id=str(i if pid is None or str(pid) == "" else pid),
                prompt=field(r, ("question", "problem"), bench="amc23", source=where, index=i),
                gold=gold_string(field(r, ("answer",), bench="amc23", source=where, index=i)),
                metadata={k: r[k] for k in ("url",) if r.get(k)},
            )
        )
    return out
