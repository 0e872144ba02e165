"""s1 budget forcing, as the s1 fork of lm-evaluation-harness that the paper used does it.

Phase 1: prompt + ``<|im_start|>think``; sample until ``<|im_start|>``, EOS, or ``B`` generated tokens (the stop token
counts towards ``B``, as vLLM's ``max_tokens`` does). If the budget ran out, append ``\\n`` (unless the thinking
already ends with one) and ``<|im_start|>answer\\nFinal Answer:``; if the model stopped by itself, append
``<|im_start|>answer``. Phase 2: sample up to ``max_gen_toks`` tokens until EOS.

Delimiter sets (``models.<name>.delimiters``): ``s1`` as above (the paper's harness, used for both models), and
``qwen3``: Qwen3's native thinking: prompt + ``<think>\n``, stop at ``</think>`` or EOS; natural stop -> ``</think>``;
budget hit -> Qwen's budget sentence ``\n\nConsidering the limited time by the user, I have to give the solution
based on the thinking directly now.\n</think>\n\n`` as secondary sources quote Qwen's thinking-budget guide
(QwenLM/Qwen3 ``docs/source/getting_started/thinking_budget.md``, not read itself; the quotations differ in whitespace
and after ``</think>``).

"Wait" extension (s1, off by default as in the paper): with ``num_ignore = k``, the first k times the model tries to
stop thinking the stop token is dropped and ``ignore_str`` ("Wait") is appended to the thinking instead; those tokens
are thinking tokens and count towards the budget.

As in the harness, phase 2 continues from token ids: the generated ids (the stop token removed), then the tokens of
``\n`` if needed and of the delimiter; the text is never re-tokenized. Deviation, "Wait" only: with ``num_ignore``
the harness also sets vLLM's ``min_tokens=1``, so no round (the first included) can stop on its first token; here a
stop right after "Wait" uses up one more ignore. And the harness lets each round generate up to the whole budget,
cuts the total to ``B`` afterwards and closes by the last round's end (a natural stop past ``B`` gets the natural
close); here no round may pass what is left of ``B``, so such a trace hits the budget and gets the budget close.

Prefix sharing: with a per-sequence random stream, the first ``B`` thinking tokens of a run capped at
``B_max`` are exactly the run capped at ``B``. So phase 1 runs once at the largest budget, each smaller budget cuts
the trace, and a trace that stopped by itself after ``L`` tokens (``L + 1 <= B``) shares one answer phase across all
those budgets.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Delimiters:
    think_start: str  # appended to the prompt; the budget counts what the model writes after it
    until_thinking: str  # single-token stop string that ends thinking (with EOS)
    natural_close: str  # appended when the model stops thinking by itself
    budget_close: str  # appended when the budget runs out
    newline_before_budget_close: bool  # s1: make sure the cut thinking ends with a newline first
    answer_marker: str  # grading reads the text after the last occurrence of this


DELIMITERS = {
    "s1": Delimiters(
        think_start="<|im_start|>think",
        until_thinking="<|im_start|>",
        natural_close="<|im_start|>answer",
        budget_close="<|im_start|>answer\nFinal Answer:",
        newline_before_budget_close=True,
        answer_marker="<|im_start|>answer\n",
    ),
    "qwen3": Delimiters(
        think_start="<think>\n",
        until_thinking="</think>",
        natural_close="</think>",
        budget_close="\n\nConsidering the limited time by the user, I have to give the solution based on the thinking "
        "directly now.\n</think>\n\n",
        newline_before_budget_close=False,
        answer_marker="</think>",
    ),
}


def closing_text(thinking_text: str, hit_budget: bool, d: Delimiters) -> str:
    """What the harness appends after the thinking."""
    if not hit_budget:
        return d.natural_close
    nl = "\n" if d.newline_before_budget_close and not thinking_text.endswith("\n") else ""
    return nl + d.budget_close


@dataclass(frozen=True)
class Cut:
    """How one budget sees a phase-1 trace: how many thinking tokens, and whether the budget was hit."""

    n_tokens: int
    hit_budget: bool


def cut_for_budget(n_generated: int, stopped: bool, budget: int) -> Cut:
    """``n_generated`` thinking tokens (stop token excluded) from a run at the largest budget; ``stopped`` if the
    model ended thinking itself. Returns what a run capped at ``budget`` would have produced."""
    if stopped and n_generated + 1 <= budget:
        return Cut(n_generated, False)
    return Cut(min(n_generated, budget), True)
