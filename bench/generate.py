"""Prefix-shared budget sweeps vs the paper harness's protocol (one independent generation per budget), side by side.

    python bench/generate.py [--n 100] [--budgets 16 32 64 128 256] [--temperature 0.6]

All protocols run on the demo model with the same backend, batch size, seed and problems; every (problem, budget)
output is checked to be identical, then thinking tokens and wall time are compared as ratios: per-budget runs,
the shared sweep in two phases (answers re-encoded from scratch), and the forking sweep (answers fork the KV cache).
Absolute times on these noisy 2-core machines mean little; the ratios are the result.

Second part: decoding throughput of our transformers backend (the forking sweep above: budget forcing, every budget,
forks, continuous batching) against a plain batched ``model.generate`` at the same batch size doing the phase-1 run
at the largest budget with the same sampling (stopping at the thinking stop token or EOS, as phase 1 does). Tokens are
the generated tokens up to and including each sequence's stop; padding after a sequence has stopped is not counted.
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

    def sweep(budgets, method, be, items=problems):
        return budget_sweep(be, tok, items, budgets, 7, DELIMITERS["s1"], 32, eos, method=method)

    # warm-up, untimed: the first protocol timed must not pay the first calls' one-off costs for the others
    for method in ("two_phase", "fork"):
        sweep(a.budgets, method, backend(), problems[:4])
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

    def canonical(rows):  # timings are measurements; every other column must agree
        rows = [{k: v for k, v in r.items() if not k.endswith("_seconds")} for r in rows]
        return sorted(rows, key=lambda r: (r["problem_id"], r["budget"]))

    ref = canonical(results["per-budget (paper)"])
    identical = all(canonical(rows) == ref for rows in results.values())

    print(
        f"demo model, {a.n} problems, budgets {a.budgets}, T={a.temperature}, batch {a.batch_size}, "
        f"{a.threads} threads; outputs of all three identical: {identical}; the forking sweep's thinking tokens are "
        "the two-phase sweep's (the same phase-1 runs, counted once)"
    )
    base = "per-budget (paper)"
    print(f"{'protocol':<22}{'thinking tokens':>16}{'ratio':>8}{'wall s':>9}{'ratio':>8}")
    for name in results:
        print(
            f"{name:<22}{think_tokens[name]:>16d}{think_tokens[name] / think_tokens[base]:>8.3f}"
            f"{walls[name]:>9.1f}{walls[name] / walls[base]:>8.3f}"
        )

    ours = backend()
    t0 = time.perf_counter()
    sweep(a.budgets, "fork", ours)
    ours_wall = time.perf_counter() - t0
    ours_tps = ours.generated_tokens / ours_wall
    plain_tokens, plain_wall = plain_generate(lm, tok, problems, a, eos)
    plain_tps = plain_tokens / plain_wall
    print(f"\n{'decoding throughput':<34}{'tokens':>9}{'wall s':>9}{'tokens/s':>10}{'ratio':>8}")
    print(f"{'model.generate, phase 1 at B_max':<34}{plain_tokens:>9d}{plain_wall:>9.1f}{plain_tps:>10.0f}{1:>8.3f}")
    print(
        f"{'prunetts forking sweep':<34}{ours.generated_tokens:>9d}{ours_wall:>9.1f}{ours_tps:>10.0f}"
        f"{ours_tps / plain_tps:>8.3f}"
    )
    if not identical:
        raise SystemExit("prefix-shared outputs differ from independent runs")


def plain_generate(lm, tok, problems, a, eos):
    """Phase 1 at the largest budget with ``model.generate``, ``a.batch_size`` prompts at a time."""
    stop = sorted(eos | {tok.convert_tokens_to_ids(DELIMITERS["s1"].until_thinking)})
    start = tok(DELIMITERS["s1"].think_start, add_special_tokens=False)["input_ids"]
    pad = tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id
    tokens, wall = 0, 0.0
    torch.manual_seed(0)
    for lo in range(0, len(problems), a.batch_size):
        ctx = [p.prompt_ids + start for p in problems[lo : lo + a.batch_size]]
        width = max(map(len, ctx))
        ids = torch.tensor([[pad] * (width - len(c)) + c for c in ctx])
        attn = torch.tensor([[0] * (width - len(c)) + [1] * len(c) for c in ctx])
        t0 = time.perf_counter()
        with torch.inference_mode():
            out = lm.generate(
                input_ids=ids,
                attention_mask=attn,
                do_sample=a.temperature > 0,
                temperature=a.temperature if a.temperature > 0 else None,
                top_p=1.0,
                top_k=0,
                max_new_tokens=a.budgets[-1],
                eos_token_id=stop,
                pad_token_id=pad,
            )
        wall += time.perf_counter() - t0
        for row in out[:, width:].tolist():
            n = next((i + 1 for i, t in enumerate(row) if t in stop), len(row))
            tokens += n
    return tokens, wall


if __name__ == "__main__":
    main()
