"""MATH500 (Lightman et al. 2023, the PRM800K test split): default source ``HuggingFaceH4/MATH-500`` (test), or a
local file with ``problem``/``answer`` fields. Prompt = the problem as is (METHODS §1.2)."""

from __future__ import annotations

from prunetts.benchmarks.local import read_records

HF_ID = "HuggingFaceH4/MATH-500"
KIND = "math"


def load(source: str | None = None, revision: str | None = None) -> list[dict]:
    out = []
    for i, r in enumerate(read_records(source or HF_ID, hf_split="test", revision=revision)):
        out.append(
            dict(
                problem_id=r.get("unique_id") or str(i),
                prompt=r["problem"],
                gold=str(r["answer"]),
                metadata={k: r[k] for k in ("subject", "level") if k in r},
            )
        )
    return out
