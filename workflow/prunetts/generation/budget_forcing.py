"""s1 budget forcing, as the s1 fork of lm-evaluation-harness that the paper used does it (METHODS §6.2).

Phase 1: prompt + ``<|im_start|>think``; sample until ``<|im_start|>``, EOS, or ``B`` generated tokens (the stop token
counts towards ``B``, as vLLM's ``max_tokens`` does). If the budget ran out, append ``\\n`` (unless the thinking
already ends with one) and ``<|im_start|>answer\\nFinal Answer:``; if the model stopped by itself, append
``<|im_start|>answer``. Phase 2: sample up to ``max_gen_toks`` tokens until EOS.

Deviation: the harness re-tokenizes the concatenated text before phase 2; we keep the generated token ids and append
the tokenized delimiter, so phase 2 sees exactly the tokens phase 1 produced (identical for byte-level tokenizers;
BPE re-tokenization can merge across the boundary).

Prefix sharing (DESIGN §4): with a per-sequence random stream, the first ``B`` thinking tokens of a run capped at
``B_max`` are exactly the run capped at ``B``. So phase 1 runs once at the largest budget, each smaller budget cuts
the trace, and a trace that stopped by itself after ``L`` tokens (``L + 1 <= B``) shares one answer phase across all
those budgets.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Delimiters:
    think_start: str = "<|im_start|>think"
    think_end: str = "<|im_start|>answer"
    until_thinking: str = "<|im_start|>"
    final_answer: str = "Final Answer:"


DELIMITERS = {"s1": Delimiters()}


def closing_text(thinking_text: str, hit_budget: bool, d: Delimiters) -> str:
    """What the harness appends after phase 1."""
    if hit_budget:
        return ("" if thinking_text.endswith("\n") else "\n") + d.think_end + "\n" + d.final_answer
    return d.think_end


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
