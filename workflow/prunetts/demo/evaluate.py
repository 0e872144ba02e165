"""Accuracy of a demo checkpoint per thinking budget, through the workflow's own generation and grading code (the
demo benchmark's problems, s1 delimiters, ``grading.grade`` with the demo benchmark's kind): a quick check of a
checkpoint without running the DAG.

python -m prunetts.demo.evaluate resources/demo-qwen3 --n 100 --temperature 0.6 --seed 7
"""

from __future__ import annotations

import argparse
import json

DEMO_BUDGETS = [16, 32, 64, 128, 256]


def evaluate(
    model_dir: str, n: int = 100, budgets=DEMO_BUDGETS, temperature: float = 0.6, seed: int = 7, batch_size: int = 50
) -> dict[int, float]:
    from prunetts import benchmarks
    from prunetts.generation.backends import Sampling, TransformersBackend
    from prunetts.generation.budget_forcing import DELIMITERS
    from prunetts.generation.prompts import prompt_ids
    from prunetts.generation.sweep import Problem, budget_sweep, eos_ids
    from prunetts.grading import grade
    from prunetts.models import load_model, load_tokenizer

    tok = load_tokenizer(model_dir)
    lm = load_model(model_dir, dtype="float32", device="cpu")
    backend = TransformersBackend(lm, tok, Sampling(temperature), batch_size=batch_size, progress=False)
    problems = benchmarks.module("demo").load(None, n)
    gold = {p["problem_id"]: p["gold"] for p in problems}
    rows = budget_sweep(
        backend,
        tok,
        [Problem(p["problem_id"], prompt_ids(tok, p["prompt"])) for p in problems],
        budgets,
        seed,
        DELIMITERS["s1"],
        32,
        eos_ids(tok, lm.config),
    )
    verdicts = grade([(r["full_text"], gold[r["problem_id"]]) for r in rows], kind=benchmarks.kind("demo"))
    acc = {}
    for b in budgets:
        sel = [v for r, (_, v) in zip(rows, verdicts, strict=True) if r["budget"] == b]
        acc[b] = sum(v == "correct" for v in sel) / len(sel)
    return acc


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0].replace("\n", " "))
    ap.add_argument("model_dir")
    ap.add_argument("--n", type=int, default=100)
    ap.add_argument("--temperature", type=float, default=0.6)
    ap.add_argument("--seed", type=int, default=7)
    a = ap.parse_args(argv)
    print(json.dumps(evaluate(a.model_dir, a.n, temperature=a.temperature, seed=a.seed)))


if __name__ == "__main__":
    main()
