"""Grader fuzz: 10,000 hypothesis-generated model outputs (random Unicode, unbalanced and deeply nested braces, huge
numbers, LaTeX built to make sympy hang, megabyte answers, code) through ``grading.grade`` in batches on the worker
pool. No item may crash the grader, every item must come back within its own timeout (the pool is never killed for a
hung worker), and the whole run stays within a fixed wall-time bound. Derandomized: the same 10,000 every run."""

from __future__ import annotations

import logging
import os
import time
from collections import Counter

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from prunetts.grading import MAX_ANSWER_CHARS, S1_MARKER, VERDICTS, answer_segment, choice_letter, extract_answer, grade

N_EXAMPLES = 10_000  # = sum(COUNTS.values())
BATCH = 5_000
TIMEOUT = 0.25  # seconds per item (both parses and the comparison); production default: 5
WORKERS = 2
FUZZ = settings(
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=list(HealthCheck),
)

# ---- strategies ------------------------------------------------------------------------------------------------------
TOKENS = ["{", "}", "\\boxed{", "\\fbox{", "\\frac{", "^{", "_{", "\\sqrt{", "\\left(", "\\right)", "$", "\\", "(", ")"]
TOKENS += ["1", "x", "+", "-", "=", ",", " ", "\n", "Answer:", "<|im_start|>answer\n", "</think>", "\\text{", "."]

unicode_text = st.text(max_size=120)
brace_soup = st.lists(st.sampled_from(TOKENS), max_size=30).map("".join)


@st.composite
def nested(draw):
    """Deep nesting, balanced or not: up to 20,000 levels."""
    depth = draw(st.integers(1, 20_000))
    opener = draw(st.sampled_from(["{", "\\frac{1}{", "\\sqrt{", "(", "^{2", "\\boxed{"]))
    closed = draw(st.integers(0, depth))
    return opener * depth + draw(st.sampled_from(["1", "x", ""])) + "}" * closed


@st.composite
def huge_number(draw):
    digits = draw(st.integers(1, 200_000))
    head = draw(st.sampled_from(["", "-", "0", "+"]))
    body = draw(st.sampled_from(["9", "1234567890", "0"])) * (digits // 10 + 1)
    tail = draw(st.sampled_from(["", ".0", ".5", "e999999", "\\times 10^{99999}", "!", "^{99999}"]))
    return head + body[:digits] + tail


@st.composite
def sympy_bomb(draw):
    """LaTeX and plain expressions built to make sympy hang or blow up (towers, factorials, huge sums)."""
    n = draw(st.integers(2, 9))
    base = draw(st.sampled_from(["2", "9", "10", "e", "x", "99"]))
    tower = "^{".join([base] * n) + "}" * (n - 1)
    big = draw(st.sampled_from(["10^{10}", "10^{100}", "9^{9^{9}}", "2^{64}"]))
    return draw(
        st.sampled_from(
            [
                tower,
                "^".join([base] * n),  # plain text: math-verify's expression parser
                f"({big})!",
                f"\\sum_{{n=1}}^{{{big}}} n^{{n}}",
                f"\\prod_{{k=1}}^{{{big}}} k",
                f"\\int_0^\\infty e^{{-x^{{{tower}}}}} dx",
                f"\\binom{{{big}}}{{{big}}}",
                f"{big}^{{{big}}} \\bmod 7",
                f"\\lim_{{x\\to\\infty}} x^{{{tower}}}",
                f"\\begin{{pmatrix}} {tower} & 1 \\\\ 1 & {tower} \\end{{pmatrix}}^{{{big}}}",
                f"{tower} = {tower} + 1",
                "+".join([f"{tower}"] * n),
            ]
        )
    )


code = st.sampled_from(
    [
        "__import__('os').system('touch pwned')",
        "exec('import os; os.system(\"touch pwned\")')",
        "eval(compile('1', 'x', 'eval'))",
        "lambda: 0",
        "().__class__.__bases__[0].__subclasses__()",
        "open('pwned', 'w').write('x')",
    ]
)


@st.composite
def megabyte(draw):
    """A chunk repeated to 0.6-1.2 MB (hypothesis cannot draw such sizes directly)."""
    chunk = draw(st.one_of(brace_soup, st.text(min_size=1, max_size=50), st.sampled_from(["\\boxed{", "9", "{"])))
    chunk = chunk or "x"
    size = draw(st.integers(600_000, 1_200_000))
    return (chunk * (size // len(chunk) + 1))[:size]


CATEGORIES = {
    "unicode": unicode_text,
    "braces": brace_soup,
    "nested": nested(),
    "huge_number": huge_number(),
    "sympy_bomb": sympy_bomb(),
    "code": code,
    "megabyte": megabyte(),
}
# examples per category (10,000 in all): megabytes sparingly (memory, and extraction is a Python loop over their
# braces), sympy bombs sparingly (each can take its whole TIMEOUT)
COUNTS = {
    "unicode": 3300,
    "braces": 3000,
    "nested": 1500,
    "huge_number": 1300,
    "code": 640,
    "sympy_bomb": 200,
    "megabyte": 60,
}


@st.composite
def model_output(draw, category: str):
    """(category, full model text, gold, grading kind): the payload framed as a model would write it."""
    payload = draw(CATEGORIES[category])
    frame = draw(
        st.sampled_from(
            [
                "<|im_start|>think\n<T>\n" + S1_MARKER + "Final Answer: \\boxed{<P>}",
                S1_MARKER + "The answer is $\\boxed{<P>}$.",
                S1_MARKER + "Answer: <P>",
                S1_MARKER + "<P>",
                "<P>",
                "<think>\n<T></think>\n\\boxed{<P>}",
                "<|im_start|>think\n<P>",  # cut off while thinking
            ]
        )
    )
    thinking = draw(st.sampled_from(["", "some steps", "\\boxed{3}"]))
    kind = draw(st.sampled_from(["math"] * 4 + ["choice"]))
    gold = draw(st.sampled_from("ABCD")) if kind == "choice" else draw(st.sampled_from(["3", "\\frac{1}{2}", "x^2+1"]))
    return category, frame.replace("<T>", thinking).replace("<P>", payload), gold, kind


def _collect() -> list[tuple[str, str, str, str]]:
    items = []
    for category, n in COUNTS.items():

        @settings(FUZZ, max_examples=n)
        @given(model_output(category))
        def draw(item):
            items.append(item)

        draw()
    return items


# ---- the 10,000 ------------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def fuzzed(tmp_path_factory, caplog_module):
    cwd = tmp_path_factory.mktemp("fuzz")  # where "touch pwned" would land if anything executed model text
    old_cwd = os.getcwd()
    os.chdir(cwd)  # the spawned workers start here too
    try:
        yield _fuzz(cwd)
    finally:
        os.chdir(old_cwd)


def _fuzz(cwd):
    t0 = time.perf_counter()
    items = _collect()
    generated = time.perf_counter() - t0
    results = []
    for start in range(0, len(items), BATCH):
        batch = items[start : start + BATCH]
        for kind in ("math", "choice"):
            part = [(i, text, gold) for i, (_, text, gold, k) in enumerate(batch, start) if k == kind]
            graded = grade([(text, gold) for _, text, gold in part], workers=WORKERS, timeout=TIMEOUT, kind=kind)
            results += [(i, *r) for (i, _, _), r in zip(part, graded, strict=True)]
    results.sort()
    total = time.perf_counter() - t0
    print(f"fuzz: {generated:.0f}s to generate, {total:.0f}s in all;", dict(Counter(r[2] for r in results)))
    return items, results, generated, total, cwd


@pytest.fixture(scope="module")
def caplog_module():
    """Warnings of prunetts.grading over the whole module (a killed pool logs 'hung past')."""
    records = []

    class Keep(logging.Handler):
        def emit(self, record):
            records.append(record)

    handler = Keep(logging.WARNING)
    logger = logging.getLogger("prunetts.grading")
    logger.addHandler(handler)
    yield records
    logger.removeHandler(handler)


def test_ten_thousand_outputs_grade_without_a_crash(fuzzed):
    items, results, _, _, _ = fuzzed
    assert len(items) == N_EXAMPLES
    assert [r[0] for r in results] == list(range(N_EXAMPLES))
    verdicts = Counter(r[2] for r in results)
    assert set(verdicts) <= set(VERDICTS), verdicts
    assert verdicts["error"] == 0, [items[r[0]][1][:200] for r in results if r[2] == "error"][:5]
    for _, extracted, _ in results:  # the grades table never stores a megabyte answer
        assert extracted is None or len(extracted) <= MAX_ANSWER_CHARS + len("...[truncated]")


def test_every_category_is_exercised(fuzzed):
    items, results, _, _, _ = fuzzed
    assert Counter(item[0] for item in items) == COUNTS
    sizes = sorted(len(item[1]) for item in items)
    assert sizes[-COUNTS["megabyte"]] > 500_000  # every megabyte output is at least half a megabyte
    bombs = [r for r in results if items[r[0]][0] == "sympy_bomb" and items[r[0]][3] == "math"]
    assert Counter(r[2] for r in bombs)["timeout"] > 0  # some bombs really need the per-item timer


def test_every_item_within_its_timeout_and_the_batch_bounded(fuzzed, caplog_module):
    """Items that run out of time come back as 'timeout' from the worker's own timer; the pool is never killed for a
    hung worker (that would be logged). The wall time is printed, never asserted (a loaded machine is slow)."""
    _, _, generated, total, _ = fuzzed
    assert not [r.getMessage() for r in caplog_module if "hung past" in r.getMessage()]
    print(f"fuzz took {total:.0f}s (generation {generated:.0f}s)")


def test_model_text_never_executes(fuzzed):
    *_, cwd = fuzzed
    assert not (cwd / "pwned").exists()


# ---- in-process extraction, with shrinking ---------------------------------------------------------------------------
@settings(max_examples=150, derandomize=True, database=None, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.one_of(unicode_text, brace_soup, nested(), huge_number()))
def test_extraction_is_total(text):
    """Segment, box and letter extraction never raise, with hypothesis shrinking a failure to a minimal text; the
    megabyte outputs go through the same functions in the 10,000 (whose per-item timer bounds the time)."""
    for marker in (S1_MARKER, "</think>"):
        segment = answer_segment(text, marker)
        extracted = extract_answer(segment)
        if extracted is not None:
            choice_letter(extracted)


# ---- what the fuzz found (each crashed or hung the grade job before the fix in grading.py) ---------------------------
def test_regressions_found_by_fuzzing():
    items = [
        (S1_MARKER + "\\boxed{" + "9" * 5000 + "}", "3"),  # ValueError: int() of more than 4300 digits
        (S1_MARKER + "\\boxed{" * 150_000, "3"),  # quadratic brace matching: one scan per unclosed box
        (S1_MARKER + "Answer: 1" + "." * 1_000_000, "3"),  # quadratic full-stop stripping
        (S1_MARKER + "\\boxed{" + "{" * 30 + "1" + "}" * 30 + "}", "3"),  # sympy recursion per nesting level
        (S1_MARKER + "\\boxed{" + "x+" * 3000 + "1}", "3"),  # a 6,000-character expression
        (S1_MARKER + "\\boxed{9^{9^{9^{9}}}}", "3"),  # sympy evaluates the tower: only the item timer stops it
    ]
    got = grade(items, workers=1, timeout=1)
    assert [v for _, v in got] == ["wrong", "no_answer", "wrong", "unparsable", "unparsable", "timeout"], got
    assert len(got[4][0]) == MAX_ANSWER_CHARS + len("...[truncated]")
