"""MATH500 (Lightman et al. 2023, the PRM800K test split): default source ``HuggingFaceH4/MATH-500`` (test), or a
local file with ``problem``/``answer`` fields. Prompt = the problem as is."""

from __future__ import annotations

from prunetts.benchmarks.local import field, read_records

HF_ID = "HuggingFaceH4/MATH-500"
KIND = "math"


def load(source: str | None = None, revision: str | None = None) -> list[dict]:
    out = []
    where = source or HF_ID
    for i, r in enumerate(read_records(where, hf_split="test", revision=revision)):
        out.append(
            dict(
                problem_id=r.get("unique_id") or str(i),
                prompt=field(r, ("problem",), bench="math500", source=where, index=i),
                gold=str(field(r, ("answer",), bench="math500", source=where, index=i)),
                metadata={k: r[k] for k in ("subject", "level") if k in r},
            )
        )
    return out
