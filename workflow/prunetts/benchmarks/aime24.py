"""AIME 2024 (AIME I and II, 30 problems): default source ``simplescaling/aime24_nofigures`` (split ``train``, the
paper's ``aime24_nofigures`` task: ASY figure code kept only where the problem needs it), or a local file with
``problem``/``answer`` fields (e.g. the Qwen2.5-Math copy, whose figures are kept; ``question`` is read when there is
no ``problem``). Prompt = the problem as is. problem_id = the record's ``id`` (else ``problem_label``,
else its position); gold = the integer answer as a plain digit string ("025" -> "25", the harness's
``str(int(answer))``). Graded as ``math``.
"""

from __future__ import annotations

from prunetts.benchmarks.local import field, gold_string, read_records

HF_ID = "simplescaling/aime24_nofigures"
KIND = "math"


def load(source: str | None = None, revision: str | None = None) -> list[dict]:
    out = []
    where = source or HF_ID
    for i, r in enumerate(read_records(where, hf_split="train", revision=revision)):
        pid = r.get("id")
        if pid is None or str(pid) == "":
            pid = r.get("problem_label") or i
        out.append(
            dict(
                problem_id=str(pid),
                prompt=field(r, ("problem", "question"), bench="aime24", source=where, index=i),
                gold=gold_string(field(r, ("answer",), bench="aime24", source=where, index=i)),
                metadata={k: r[k] for k in ("problem_label", "url") if r.get(k)},
            )
        )
    return out
