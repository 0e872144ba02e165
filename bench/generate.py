"""Prefix-shared budget sweeps vs the paper harness's protocol (one independent generation per budget), side by side.

    python bench/generate.py [--n 100] [--budgets 16 32 64 128 256] [--temperature 0.6]

All protocols run on the demo model with the same backend, batch size, seed and problems; every (problem, budget)
output is checked to be identical, then thinking tokens and wall time are compared as ratios: per-budget runs,
the shared sweep in two phases (answers re-encoded from scratch), and the forking sweep (answers fork the KV cache).
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
    """Wraps a backend's ``generate`` and adds up generated tokens and seconds per phase."""

    def __init__(self, backend):
        self.backend = backend
        self.tokens = {"think": 0, "answer": 0}

    def generate(self, requests, desc=""):
        phase = "think" if desc.startswith("think") else "answer"
        out = self.backend.generate(requests, desc=desc)
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
        return TransformersBackend(lm, tok, Sampling(a.temperature), a.batch_size, progress=False)

    def sweep(budgets, method, be):
        return budget_sweep(be, tok, problems, budgets, 7, DELIMITERS["s1"], 32, eos, method=method)

    results, walls, think_tokens = {}, {}, {}
    for name in ("per-budget (paper)", "shared, two-phase", "shared, forking"):
        t0 = time.perf_counter()
        if name.startswith("per-budget"):
            counting = Counting(backend())
            results[name] = [r for b in a.budgets for r in sweep([b], "two_phase", counting)]
            think_tokens[name] = counting.tokens["think"]
        elif name.endswith("two-phase"):
            counting = Counting(backend())
            results[name] = sweep(a.budgets, "two_phase", counting)
            think_tokens[name] = counting.tokens["think"]
        else:
            results[name] = sweep(a.budgets, "fork", backend())
        walls[name] = time.perf_counter() - t0
    think_tokens["shared, forking"] = think_tokens["shared, two-phase"]  # same thinking runs by construction

    key = lambda r: (r["problem_id"], r["budget"])  # noqa: E731
    ref = sorted(results["per-budget (paper)"], key=key)
    identical = all(sorted(rows, key=key) == ref for rows in results.values())

    print(
        f"demo model, {a.n} problems, budgets {a.budgets}, T={a.temperature}, batch {a.batch_size}, "
        f"{a.threads} threads; outputs of all three identical: {identical}"
    )
    base = "per-budget (paper)"
    print(f"{'protocol':<22}{'thinking tokens':>16}{'ratio':>8}{'wall s':>9}{'ratio':>8}")
    for name in results:
        print(
            f"{name:<22}{think_tokens[name]:>16d}{think_tokens[name] / think_tokens[base]:>8.3f}"
            f"{walls[name]:>9.1f}{walls[name] / walls[base]:>8.3f}"
        )
    if not identical:
        raise SystemExit("prefix-shared outputs differ from independent runs")


if __name__ == "__main__":
    main()
