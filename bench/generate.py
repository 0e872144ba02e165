"""Prefix-shared budget sweep vs the paper harness's protocol (one independent generation per budget), side by side.

    python bench/generate.py [--n 100] [--budgets 16 32 64 128 256] [--temperature 0.6]

Both protocols run on the demo model with the same backend, batch size, seed and problems; every (problem, budget)
output is checked to be identical, then phase-1 (thinking) tokens, answer tokens and wall time are compared as ratios.
Absolute times on these noisy 2-core machines mean little; the ratios are the result.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch

from prunetts.demo import task
from prunetts.generation.backends import Sampling, TransformersBackend
from prunetts.generation.budget_forcing import DELIMITERS
from prunetts.generation.prompts import prompt_ids
from prunetts.generation.sweep import Problem, budget_sweep, eos_ids
from prunetts.models import load_model, load_tokenizer

DEMO = Path(__file__).resolve().parents[1] / "resources" / "demo-qwen3"


class Counting:
    """Wraps a backend and adds up generated tokens and seconds per phase."""

    def __init__(self, backend):
        self.backend = backend
        self.tokens = {"think": 0, "answer": 0}
        self.seconds = {"think": 0.0, "answer": 0.0}

    def generate(self, requests, desc=""):
        phase = "think" if desc.startswith("think") else "answer"
        t0 = time.perf_counter()
        out = self.backend.generate(requests, desc=desc)
        self.seconds[phase] += time.perf_counter() - t0
        self.tokens[phase] += sum(len(r.tokens) + r.stopped for r in out)
        return out


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", default=str(DEMO))
    ap.add_argument("--n", type=int, default=100)
    ap.add_argument("--budgets", type=int, nargs="+", default=[16, 32, 64, 128, 256])
    ap.add_argument("--temperature", type=float, default=0.6)
    ap.add_argument("--batch-size", type=int, default=50)
    ap.add_argument("--threads", type=int, default=2)
    a = ap.parse_args(argv)
    torch.set_num_threads(a.threads)

    tok = load_tokenizer(a.model)
    lm = load_model(a.model, dtype="float32", device="cpu")
    problems = [Problem(p.id, prompt_ids(tok, p.question)) for p in task.sample_problems("test", a.n)]
    eos = eos_ids(tok, lm.config)

    def backend():
        return Counting(TransformersBackend(lm, tok, Sampling(a.temperature), a.batch_size, progress=False))

    shared = backend()
    t0 = time.perf_counter()
    rows_shared = budget_sweep(shared, tok, problems, a.budgets, 7, DELIMITERS["s1"], 32, eos)
    wall_shared = time.perf_counter() - t0

    naive = backend()
    t0 = time.perf_counter()
    rows_naive = []
    for b in a.budgets:
        rows_naive += budget_sweep(naive, tok, problems, [b], 7, DELIMITERS["s1"], 32, eos)
    wall_naive = time.perf_counter() - t0

    key = lambda r: (r["problem_id"], r["budget"])  # noqa: E731
    identical = sorted(rows_shared, key=key) == sorted(rows_naive, key=key)

    print(
        f"demo model, {a.n} problems, budgets {a.budgets}, T={a.temperature}, batch {a.batch_size}, "
        f"{a.threads} threads; outputs identical: {identical}"
    )
    print(f"{'':28}{'per-budget (paper)':>20}{'prefix-shared':>16}{'ratio':>8}")
    for label, x, y in [
        ("phase-1 (thinking) tokens", naive.tokens["think"], shared.tokens["think"]),
        ("answer-phase tokens", naive.tokens["answer"], shared.tokens["answer"]),
        ("wall time (s)", wall_naive, wall_shared),
    ]:
        fmt = "{:>20.1f}{:>16.1f}" if isinstance(x, float) else "{:>20d}{:>16d}"
        print(f"{label:28}" + fmt.format(x, y) + f"{y / x:>8.3f}")
    if not identical:
        raise SystemExit("prefix-shared outputs differ from independent runs")


if __name__ == "__main__":
    main()
