"""The budget sweep of one (model, variant, bench, seed): every budget from one thinking run (budget_forcing.py).

A backend turns a ``SweepPlan`` into one ``Outcome`` per problem: the thinking tokens of the run at the largest
budget, whether the model stopped thinking by itself, and one answer per distinct cut (``Cut``: thinking length and
whether the budget was hit). ``two_phase`` is the plain implementation on any backend's ``generate`` (phase 1 for
all problems, then every answer context from scratch); ``TransformersBackend.run_sweep`` produces the same outcome
in one decode loop that forks a row's KV cache at each budget, so no answer context is ever re-encoded.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from prunetts.generation.backends import Request
from prunetts.generation.budget_forcing import Cut, Delimiters, closing_text, cut_for_budget
from prunetts.generation.sampling import uniforms

log = logging.getLogger(__name__)


@dataclass
class Problem:
    problem_id: str
    prompt_ids: list[int]


@dataclass
class SweepItem:
    problem_id: str
    context: list[int]  # prompt + thinking-start tokens
    think_stream: object
    answer_stream: object


@dataclass
class SweepPlan:
    items: list[SweepItem]
    budgets: list[int]  # ascending
    think_stop: frozenset[int]
    answer_stop: frozenset[int]
    max_gen_toks: int
    closing: Callable[[list[int], bool], list[int]]  # (thinking ids, hit budget) -> delimiter ids to append


@dataclass
class Outcome:
    thinking: list[int] = field(default_factory=list)
    stopped: bool = False
    answers: dict[Cut, list[int]] = field(default_factory=dict)


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


def two_phase(backend, plan: SweepPlan) -> list[Outcome]:
    """Reference implementation on ``backend.generate``: thinking at the largest budget, then each answer context."""
    b_max = plan.budgets[-1]
    phase1 = backend.generate(
        [Request(it.context, b_max, plan.think_stop, it.think_stream) for it in plan.items], desc=f"think (B<={b_max})"
    )
    outcomes = [Outcome(r.tokens, r.stopped) for r in phase1]
    keys, requests = [], []
    for i, (it, o) in enumerate(zip(plan.items, outcomes, strict=True)):
        for cut in dict.fromkeys(cut_for_budget(len(o.thinking), o.stopped, b) for b in plan.budgets):
            thinking = o.thinking[: cut.n_tokens]
            keys.append((i, cut))
            requests.append(
                Request(
                    it.context + thinking + plan.closing(thinking, cut.hit_budget),
                    plan.max_gen_toks,
                    plan.answer_stop,
                    it.answer_stream,
                )
            )
    for (i, cut), res in zip(keys, backend.generate(requests, desc="answer"), strict=True):
        outcomes[i].answers[cut] = res.tokens
    return outcomes


def budget_sweep(
    backend,
    tokenizer,
    problems: list[Problem],
    budgets: list[int],
    seed: int,
    delims: Delimiters,
    max_gen_toks: int,
    eos: set[int],
    method: str = "auto",
) -> list[dict]:
    """Returns one dict per (problem, budget), problems in input order, budgets ascending. ``method``: ``fork``
    (the backend's ``run_sweep``), ``two_phase``, or ``auto`` (fork when the backend has it)."""
    budgets = sorted(budgets)
    start_ids = tokenizer(delims.think_start, add_special_tokens=False)["input_ids"]

    def closing(thinking_ids: list[int], hit: bool) -> list[int]:
        text = tokenizer.decode(thinking_ids, skip_special_tokens=False) if hit else ""
        return tokenizer(closing_text(text, hit, delims), add_special_tokens=False)["input_ids"]

    plan = SweepPlan(
        items=[
            SweepItem(
                p.problem_id,
                p.prompt_ids + start_ids,
                uniforms(seed, p.problem_id, "think", budgets[-1]),
                uniforms(seed, p.problem_id, "answer", max_gen_toks),
            )
            for p in problems
        ],
        budgets=budgets,
        think_stop=frozenset({single_token_id(tokenizer, delims.until_thinking)} | eos),
        answer_stop=frozenset(eos),
        max_gen_toks=max_gen_toks,
        closing=closing,
    )
    t0 = time.perf_counter()
    use_fork = method == "fork" or (method == "auto" and hasattr(backend, "run_sweep"))
    outcomes = backend.run_sweep(plan) if use_fork else two_phase(backend, plan)
    n_answers = sum(len(o.answers) for o in outcomes)
    log.info(
        "sweep (%s): %d problems, %d answer phases for %d (problem, budget) pairs in %.1fs",
        "fork" if use_fork else "two-phase",
        len(problems),
        n_answers,
        len(problems) * len(budgets),
        time.perf_counter() - t0,
    )

    rows = []
    for p, o in zip(problems, outcomes, strict=True):
        for b in budgets:
            cut = cut_for_budget(len(o.thinking), o.stopped, b)
            thinking_ids = o.thinking[: cut.n_tokens]
            thinking = tokenizer.decode(thinking_ids, skip_special_tokens=False)
            answer_ids = o.answers[cut]
            answer = tokenizer.decode(answer_ids, skip_special_tokens=False)
            rows.append(
                dict(
                    problem_id=p.problem_id,
                    budget=b,
                    thinking_tokens=cut.n_tokens,
                    hit_budget=cut.hit_budget,
                    answer_tokens=len(answer_ids),
                    thinking_text=thinking,
                    answer_text=answer,
                    full_text=delims.think_start + thinking + closing_text(thinking, cut.hit_budget, delims) + answer,
                )
            )
    return rows
