"""The budget sweep of one (model, variant, bench, seed): every budget from one phase-1 run (budget_forcing.py)."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

from prunetts.generation.backends import Request
from prunetts.generation.budget_forcing import Delimiters, closing_text, cut_for_budget
from prunetts.generation.sampling import uniforms

log = logging.getLogger(__name__)


@dataclass
class Problem:
    problem_id: str
    prompt_ids: list[int]


def single_token_id(tokenizer, text: str) -> int:
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    if len(ids) != 1:
        raise ValueError(f"stop string {text!r} is {len(ids)} tokens for this tokenizer; it must be a single token")
    return ids[0]


def eos_ids(tokenizer, model_config) -> set[int]:
    ids = {tokenizer.eos_token_id}
    extra = getattr(getattr(model_config, "generation_config", None), "eos_token_id", None) or model_config.eos_token_id
    if isinstance(extra, int):
        ids.add(extra)
    elif extra:
        ids.update(extra)
    return {i for i in ids if i is not None}


def budget_sweep(
    backend,
    tokenizer,
    problems: list[Problem],
    budgets: list[int],
    seed: int,
    delims: Delimiters,
    max_gen_toks: int,
    eos: set[int],
) -> list[dict]:
    """Returns one dict per (problem, budget), problems in input order, budgets ascending."""
    budgets = sorted(budgets)
    b_max = budgets[-1]
    start_ids = tokenizer(delims.think_start, add_special_tokens=False)["input_ids"]
    think_stop = frozenset({single_token_id(tokenizer, delims.until_thinking)} | eos)

    t0 = time.perf_counter()
    phase1 = backend.generate(
        [
            Request(p.prompt_ids + start_ids, b_max, think_stop, uniforms(seed, p.problem_id, "think", b_max))
            for p in problems
        ],
        desc=f"think (B<={b_max})",
    )
    t1 = time.perf_counter()

    # one answer phase per distinct (problem, thinking length, hit) context
    cuts, answer_keys = {}, {}
    for pi, res in enumerate(phase1):
        for b in budgets:
            cut = cut_for_budget(len(res.tokens), res.stopped, b)
            cuts[pi, b] = cut
            answer_keys.setdefault((pi, cut), len(answer_keys))
    contexts, texts = [], {}
    for (pi, cut), _ in sorted(answer_keys.items(), key=lambda kv: kv[1]):
        thinking_ids = phase1[pi].tokens[: cut.n_tokens]
        thinking = tokenizer.decode(thinking_ids, skip_special_tokens=False)
        closing = closing_text(thinking, cut.hit_budget, delims)
        texts[pi, cut] = (thinking, closing)
        contexts.append(
            Request(
                problems[pi].prompt_ids
                + start_ids
                + thinking_ids
                + tokenizer(closing, add_special_tokens=False)["input_ids"],
                max_gen_toks,
                frozenset(eos),
                uniforms(seed, problems[pi].problem_id, "answer", max_gen_toks),
            )
        )
    phase2 = backend.generate(contexts, desc="answer")
    t2 = time.perf_counter()
    log.info(
        "phase 1: %d sequences in %.1fs; phase 2: %d answer contexts for %d (problem, budget) pairs in %.1fs",
        len(problems),
        t1 - t0,
        len(contexts),
        len(cuts),
        t2 - t1,
    )

    rows = []
    for pi, p in enumerate(problems):
        for b in budgets:
            cut = cuts[pi, b]
            ans = phase2[answer_keys[pi, cut]]
            thinking, closing = texts[pi, cut]
            answer = tokenizer.decode(ans.tokens, skip_special_tokens=False)
            rows.append(
                dict(
                    problem_id=p.problem_id,
                    budget=b,
                    thinking_tokens=cut.n_tokens,
                    hit_budget=cut.hit_budget,
                    answer_tokens=len(ans.tokens),
                    thinking_text=thinking,
                    answer_text=answer,
                    full_text=delims.think_start + thinking + closing + answer,
                )
            )
    return rows
