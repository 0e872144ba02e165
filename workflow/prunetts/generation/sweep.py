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
from prunetts.generation.budget_forcing import DELIMITERS, Cut, Delimiters, closing_text, cut_for_budget
from prunetts.generation.sampling import Stream, stream_seed

log = logging.getLogger(__name__)


@dataclass
class Problem:
    problem_id: str
    prompt_ids: list[int]


@dataclass
class SweepItem:
    problem_id: str
    context: list[int]  # prompt + thinking-start tokens
    think_stream: Stream
    answer_stream: Stream


@dataclass
class SweepPlan:
    items: list[SweepItem]
    budgets: list[int]  # ascending
    think_stop: frozenset[int]
    answer_stop: frozenset[int]
    max_gen_toks: int
    closing: Callable[[list[int], bool], list[int]]  # (thinking ids, hit budget) -> delimiter ids to append
    num_ignore: int = 0  # "Wait" extension: stop attempts to override
    ignore_ids: list[int] = field(default_factory=list)  # appended to the thinking instead of stopping
    context_limit: int | None = None  # the model's context: an answer stops there (the harness: vLLM's max_model_len)

    def answer_cap(self, context_len: int) -> int:
        """Answer tokens allowed after a context of ``context_len`` tokens: ``max_gen_toks``, cut where the context
        ends; 0 where the context is already full (the vLLM backend sends no request then: every backend gives an
        empty answer)."""
        if self.context_limit is None:
            return self.max_gen_toks
        return max(0, min(self.max_gen_toks, self.context_limit - context_len))


@dataclass
class Outcome:
    thinking: list[int] = field(default_factory=list)
    stopped: bool = False
    wait_at: list[int] = field(default_factory=list)  # thinking length at each "Wait" insertion
    answers: dict[Cut, list[int]] = field(default_factory=dict)
    think_seconds: float = 0.0  # wall time from joining a batch to the end of the thinking
    answer_seconds: dict[Cut, float] = field(default_factory=dict)  # wall time of each answer phase
    answer_stopped: dict[Cut, bool] = field(default_factory=dict)  # ended on an end token, not at a token cap


def opens_thinking(prompt_ids: list[int], start_ids: list[int]) -> bool:
    """Whether a prompt already ends with the thinking start: chat templates of thinking models (QwQ, Qwen3
    "Thinking-2507", DeepSeek-R1 distills) end their generation prompt with ``<think>\n``, which the sweep must not
    append a second time."""
    return bool(start_ids) and prompt_ids[-len(start_ids) :] == start_ids


def _warn_other_opening(tokenizer, problems: list[Problem], delims: Delimiters) -> None:
    """Warn when the chat template already opens the thinking of another delimiter set (a thinking model's
    ``<think>\n`` under ``delimiters: s1``): the chosen set's opening then follows it, and the model thinks inside
    two openings, a prompt it was never trained on."""
    for name, other in DELIMITERS.items():
        if other.think_start == delims.think_start:
            continue
        other_ids = tokenizer(other.think_start, add_special_tokens=False)["input_ids"]
        n = sum(opens_thinking(p.prompt_ids, other_ids) for p in problems)
        if n:
            log.warning(
                "the chat template's generation prompt already opens the thinking with %r (%d of %d prompts) and "
                "%r is appended after it; delimiters: %s fit this template",
                other.think_start,
                n,
                len(problems),
                delims.think_start,
                name,
            )


def single_token_id(tokenizer, text: str) -> int:
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    if len(ids) != 1:
        raise ValueError(f"stop string {text!r} is {len(ids)} tokens for this tokenizer; it must be a single token")
    return ids[0]


def eos_ids(tokenizer, model_config) -> set[int]:
    """The tokenizer's and the model config's end ids (``run.generation_eos`` adds generation_config.json's)."""
    ids = {tokenizer.eos_token_id}
    extra = model_config.eos_token_id
    if isinstance(extra, int):
        ids.add(extra)
    elif extra:
        ids.update(extra)
    return {i for i in ids if i is not None}


def _think_rounds(backend, plan: SweepPlan, outcomes: list[Outcome]) -> None:
    """Phase 1 at the largest budget on ``backend.generate``. With the "Wait" extension a row that stops early gets
    ``ignore_ids`` appended and continues (its stream moves on by the tokens it already has) in another round."""
    b_max = plan.budgets[-1]
    ignores = [plan.num_ignore] * len(plan.items)
    todo = list(range(len(plan.items)))
    while todo:
        reqs = []
        for i in todo:
            it, o = plan.items[i], outcomes[i]
            reqs.append(
                Request(
                    it.context + o.thinking,
                    b_max - len(o.thinking),
                    plan.think_stop,
                    it.think_stream.at(len(o.thinking)),
                )
            )
        again = []
        for i, res in zip(todo, backend.generate(reqs, desc=f"think (B<={b_max})"), strict=True):
            o = outcomes[i]
            o.thinking += res.tokens
            o.think_seconds += res.seconds
            if res.stopped and ignores[i] > 0 and len(o.thinking) < b_max:
                ignores[i] -= 1
                o.wait_at.append(len(o.thinking))
                o.thinking += plan.ignore_ids[: b_max - len(o.thinking)]
                if len(o.thinking) < b_max:
                    again.append(i)
            else:
                o.stopped = res.stopped
        todo = again


def two_phase(backend, plan: SweepPlan) -> list[Outcome]:
    """Reference implementation on ``backend.generate``: thinking at the largest budget, then each answer context
    from scratch (engines with prefix caching, such as vLLM, share the answer contexts' KV themselves)."""
    outcomes = [Outcome() for _ in plan.items]
    _think_rounds(backend, plan, outcomes)
    keys, requests = [], []
    for i, (it, o) in enumerate(zip(plan.items, outcomes, strict=True)):
        for cut in dict.fromkeys(cut_for_budget(len(o.thinking), o.stopped, b) for b in plan.budgets):
            thinking = o.thinking[: cut.n_tokens]
            keys.append((i, cut))
            context = it.context + thinking + plan.closing(thinking, cut.hit_budget)
            requests.append(Request(context, plan.answer_cap(len(context)), plan.answer_stop, it.answer_stream))
    for (i, cut), res in zip(keys, backend.generate(requests, desc="answer"), strict=True):
        outcomes[i].answers[cut] = res.tokens
        outcomes[i].answer_stopped[cut] = res.stopped
        outcomes[i].answer_seconds[cut] = res.seconds
    return outcomes


def _fork_sweep(backend, plan: SweepPlan, done: dict, finished, journaled: bool) -> None:
    """``backend.run_sweep`` over the plan's items not yet ``done``. Out of device memory (a batch's KV caches, its
    forks included, outgrow the GPU), the finished problems are kept and the rest run again at half the batch size,
    down to one sequence: the samples do not depend on the batch size (per-problem random streams), so the outcome
    is that of a run at the smaller size from the start."""
    while True:
        part = SweepPlan(**{**vars(plan), "items": [it for it in plan.items if it.problem_id not in done]})
        if not part.items:
            return
        try:
            backend.run_sweep(part, on_done=lambda i, o, part=part: finished(part.items[i].problem_id, o))
            return
        except Exception as e:
            if not _out_of_memory(e) or not hasattr(backend, "shrink_batch"):
                raise
            what = str(e).splitlines()[0][:200]
        # here, not in the handler: the traceback held the failed batch's tensors until the handler ended
        size, n_done = backend.batch_size, sum(it.problem_id in done for it in plan.items)
        if not backend.shrink_batch():  # at size 1 already
            from prunetts.models import ModelError

            raise ModelError(
                f"generation: out of device memory even at batch size 1 ({what}; {n_done} of {len(plan.items)} "
                f"problems finished{', kept in the journal' if journaled else ''}): lower the largest budget or "
                "max_gen_toks, free the device, or use a larger GPU or backend: vllm"
            )
        log.warning(
            "out of device memory at batch size %d with %d of %d problems finished (%s); going on at batch size %d "
            "(set generation.batch_size to it to start there)",
            size,
            n_done,
            len(plan.items),
            what,
            backend.batch_size,
        )


def _out_of_memory(e: BaseException) -> bool:
    import torch

    return isinstance(e, torch.OutOfMemoryError)


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
    num_ignore: int = 0,
    ignore_str: str = "Wait",
    journal=None,
    chunk: int = 256,
    context_limit: int | None = None,
) -> list[dict]:
    """Returns one dict per (problem, budget), problems in input order, budgets ascending. ``method``: ``fork``
    (the backend's ``run_sweep``), ``two_phase``, or ``auto`` (fork when the backend has it). ``journal``
    (``journal.Journal``): problems it already holds are not generated again, new ones are recorded as they finish;
    ``two_phase`` runs ``chunk`` problems at a time so that a crash loses at most one chunk. ``context_limit``: the
    model's context length; an answer phase stops where it ends."""
    budgets = sorted(budgets)
    if not budgets or budgets[0] < 1 or len(set(budgets)) < len(budgets):
        raise ValueError(f"budgets must be distinct positive token counts, got {budgets}")
    start_ids = tokenizer(delims.think_start, add_special_tokens=False)["input_ids"]

    def closing(thinking_ids: list[int], hit: bool) -> list[int]:
        text = tokenizer.decode(thinking_ids, skip_special_tokens=False) if hit else ""
        return tokenizer(closing_text(text, hit, delims), add_special_tokens=False)["input_ids"]

    ignore_ids = tokenizer(ignore_str, add_special_tokens=False)["input_ids"] if num_ignore else []
    if num_ignore and not ignore_ids:
        raise ValueError(f"ignore_str {ignore_str!r} tokenizes to nothing; set models.<name>.ignore_str")
    done: dict[str, Outcome] = dict(journal.outcomes) if journal is not None else {}
    todo = [p for p in problems if p.problem_id not in done]
    opened = {p.problem_id for p in todo if opens_thinking(p.prompt_ids, start_ids)}
    if opened:
        log.info(
            "the chat template's generation prompt already ends with %r (%d of %d prompts): not appended again",
            delims.think_start,
            len(opened),
            len(todo),
        )
    _warn_other_opening(tokenizer, todo, delims)
    plan = SweepPlan(
        items=[
            SweepItem(
                p.problem_id,
                p.prompt_ids if p.problem_id in opened else p.prompt_ids + start_ids,
                Stream(stream_seed(seed, p.problem_id, "think"), budgets[-1]),
                Stream(stream_seed(seed, p.problem_id, "answer"), max_gen_toks),
            )
            for p in todo
        ],
        budgets=budgets,
        think_stop=frozenset({single_token_id(tokenizer, delims.until_thinking)} | eos),
        answer_stop=frozenset(eos),
        max_gen_toks=max_gen_toks,
        closing=closing,
        num_ignore=num_ignore,
        ignore_ids=ignore_ids,
        context_limit=context_limit,
    )

    if context_limit is not None and plan.items:
        # the longest closing delimiter ("\n" + "<|im_start|>answer\nFinal Answer:") plus one answer token
        room = len(closing([], True)) + 2
        over = [it for it in plan.items if len(it.context) + budgets[-1] + room > context_limit]
        if over:  # vLLM clamps such a thinking phase at the context, transformers would run past it
            log.warning(
                "%d of %d prompts plus the largest budget %d leave no room for an answer in the model's context of "
                "%d tokens (longest prompt %d): their thinking may be cut by the context, not the budget; lower the "
                "largest budget or raise the context (vLLM max_model_len)",
                len(over),
                len(plan.items),
                budgets[-1],
                context_limit,
                max(len(it.context) for it in over),
            )

    def finished(problem_id: str, o: Outcome) -> None:
        done[problem_id] = o
        if journal is not None:
            journal.record(problem_id, o)

    t0 = time.perf_counter()
    use_fork = method == "fork" or (method == "auto" and hasattr(backend, "run_sweep"))
    if len(done):
        log.info("resuming: %d of %d problems already done", len(problems) - len(todo), len(problems))
    if use_fork and plan.items:
        _fork_sweep(backend, plan, done, finished, journal is not None)
    else:
        for lo in range(0, len(plan.items), chunk):
            part = SweepPlan(**{**vars(plan), "items": plan.items[lo : lo + chunk]})
            for it, o in zip(part.items, two_phase(backend, part), strict=True):
                finished(it.problem_id, o)
    n_answers = sum(len(done[it.problem_id].answers) for it in plan.items)
    log.info(
        "sweep (%s): %d problems, %d answer phases for %d (problem, budget) pairs in %.1fs",
        "fork" if use_fork else "two-phase",
        len(plan.items),
        n_answers,
        len(plan.items) * len(budgets),
        time.perf_counter() - t0,
    )

    rows = []
    for p in problems:
        o = done[p.problem_id]
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
                    waits=sum(1 for pos in o.wait_at if pos < cut.n_tokens),
                    answer_tokens=len(answer_ids),
                    answer_stopped=o.answer_stopped[cut],
                    thinking_text=thinking,
                    answer_text=answer,
                    full_text=delims.think_start + thinking + closing_text(thinking, cut.hit_budget, delims) + answer,
                    think_seconds=o.think_seconds,
                    answer_seconds=o.answer_seconds.get(cut, 0.0),
                )
            )
    return rows
