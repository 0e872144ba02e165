"""The embedded demo task: digit sums mod 10 with a worked trace that grows with the problem.

A problem is a string of k digits (k in [K_MIN, K_MAX]); the answer is their sum mod 10. The worked solution is
written as fixed-width lines ``acc|rest`` padded with ``.``: the first line copies the digits, each next line adds the
first remaining digit to the accumulator and drops it. Every line has the same width, so each output character sits
at a constant offset from the characters it depends on in the line above; a tiny transformer learns that in minutes
(a free-form trace does not). The trace has k lines, so thinking length grows linearly with k and a
thinking budget below the trace length forces an answer from a partial sum: a real test-time-scaling curve.

Texts use the s1 format: the assistant turn is ``<|im_start|>think`` + trace + ``<|im_start|>answer`` + answer.

Splits are a partition of the problem space by a stable hash of the digit string (test / calibration / train), so
they can never overlap; each split is then sampled with its own fixed seed.
"""

from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass

K_MIN = 2
K_MAX = 12
LINE_WIDTH = K_MAX + 2  # "acc|" + up to K_MAX-1 remaining digits + padding, then "\n"
PAD = "."

THINK_START = "<|im_start|>think"
THINK_END = "<|im_start|>answer"
FINAL_ANSWER = "Final Answer:"

# hash bucket (0..99) ranges of each split: disjoint by construction
SPLITS = {"test": range(0, 10), "calibration": range(10, 20), "train": range(20, 100)}
SPLIT_SEEDS = {"test": 1234, "calibration": 5678, "train": 0}


@dataclass(frozen=True)
class Problem:
    digits: str

    @property
    def id(self) -> str:
        return f"demo-{self.digits}"

    @property
    def question(self) -> str:
        return f"Sum the digits mod 10: {self.digits}"

    @property
    def answer(self) -> int:
        return sum(int(c) for c in self.digits) % 10


def split_of(digits: str) -> str:
    bucket = int.from_bytes(hashlib.sha256(digits.encode()).digest()[:4], "big") % 100
    for name, buckets in SPLITS.items():
        if bucket in buckets:
            return name
    raise AssertionError(bucket)


def trace_lines(p: Problem) -> list[str]:
    """Fixed-width lines ``acc|rest``; the last line's acc is the answer."""
    acc, rest = int(p.digits[0]), p.digits[1:]
    lines = []
    while True:
        lines.append(f"{acc}|{rest}".ljust(LINE_WIDTH, PAD))
        if not rest:
            return lines
        acc, rest = (acc + int(rest[0])) % 10, rest[1:]


def trace(p: Problem) -> str:
    """Thinking text as generated after ``<|im_start|>think`` (starts with the newline the s1 format has there)."""
    return "\n" + "".join(line + "\n" for line in trace_lines(p))


def partial_answer(thinking: str) -> int | None:
    """The accumulator of the last line whose acc digit was written: what a cut-off trace 'believes'."""
    last = None
    for line in thinking.split("\n"):
        if line[:1].isdigit():
            last = int(line[0])
    return last


def answer_text(value: int) -> str:
    return f"The answer is $\\boxed{{{value}}}$"


def sample_problems(split: str, n: int, seed: int | None = None, unique: bool = True) -> list[Problem]:
    """n problems of one split, k uniform in [K_MIN, K_MAX]; the draw depends only on (split, seed)."""
    rng = random.Random(SPLIT_SEEDS[split] if seed is None else seed)
    out: list[Problem] = []
    seen: set[str] = set()
    while len(out) < n:
        k = rng.randint(K_MIN, K_MAX)
        digits = "".join(rng.choice("0123456789") for _ in range(k))
        if split_of(digits) != split or (unique and digits in seen):
            continue
        seen.add(digits)
        out.append(Problem(digits))
    return out
