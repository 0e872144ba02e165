"""Grading: answer segment, extraction, math-verify on real MATH500/AIME rows, integer formats, GPQA letters."""

import itertools
import json

import pytest

from prunetts import benchmarks
from prunetts.benchmarks import gpqa_diamond
from prunetts.grading import (
    S1_MARKER,
    answer_segment,
    as_integer,
    choice_letter,
    extract_answer,
    grade,
    grade_rows,
    last_boxed,
)
from tests.conftest import bench_file


def test_answer_segment_rules():
    text = "<|im_start|>think\nsteps \\boxed{1}\n<|im_start|>answer\nFinal Answer: \\boxed{7}"
    assert answer_segment(text) == "Final Answer: \\boxed{7}"
    assert answer_segment("x<|im_start|>answer\na<|im_start|>answer\nb") == "b"
    assert answer_segment("x<|im_start|>assistant\nline two") == "line two"
    assert answer_segment("no delimiter \\boxed{3}") == "no delimiter \\boxed{3}"
    # the natural close "<|im_start|>answer" followed by no newline: the harness keeps the one-line tail
    # (``"\n".join(a.split("\n")[1:])`` only when "\n" is in it), so its box or "Answer:" is still read
    assert answer_segment("t<|im_start|>answer The answer is \\boxed{5}") == "answer The answer is \\boxed{5}"
    assert answer_segment("t<|im_start|>answer: 5") == "answer: 5"
    assert grade([("t<|im_start|>answer The answer is \\boxed{5}", "5")], workers=1) == [("5", "correct")]


def test_extraction():
    assert last_boxed(r"\boxed{1} then \boxed{\frac{1}{2}}") == r"\frac{1}{2}"
    assert last_boxed(r"\fbox{x+1}") == "x+1"
    assert last_boxed(r"\boxed 5$") == "5"
    # the last box only (the harness): an open one (cut off) extracts nothing, so "Answer:" gets its turn
    assert last_boxed(r"\boxed{2} \boxed{unclosed") is None
    assert extract_answer(r"\boxed{2} Answer: 3 \boxed{unclosed") == r"3 \boxed{unclosed"
    assert last_boxed(r"\boxed{\left\{ x \right.}") == r"\left\{ x \right."  # \{ is a literal brace
    assert last_boxed(r"\boxed {5} and") == "5" and last_boxed(r"\boxed{\{1, 2\}}") == r"\{1, 2\}"
    assert extract_answer("so the Answer: 42") == "42"
    # the last "Answer:" when the model revised itself (the harness's regex is greedy: it keeps the last one)
    assert extract_answer("Answer: 3\nHmm, no.\nAnswer: 5") == "5"
    assert extract_answer("nothing here") is None
    # a box is the whole control word, as TeX reads it (and math-verify's box pattern): another macro that starts
    # with the same letters is no box and does not hide the last real one
    assert last_boxed(r"\boxed{3} and \boxedd{4}") == "3" and last_boxed(r"\fbox{1} \fboxsep{2}") == "1"
    assert last_boxed(r"\boxedd{0}") is None and extract_answer(r"\boxedd{0} Answer: 7") == "7"


def test_thinking_box_is_ignored():
    text = "<|im_start|>think\n\\boxed{3}\n<|im_start|>answer\nThe answer is $\\boxed{4}$"
    assert grade([(text, "4")], workers=1) == [("4", "correct")]
    assert grade([(text, "3")], workers=1) == [("4", "wrong")]


def test_math_verify_reads_the_gold_first():
    """math-verify's ``verify(gold, prediction)`` is not symmetric: a gold inequality accepts the interval it
    describes, while the prediction as gold would not (the arguments swapped grade this "wrong")."""
    text = f"{S1_MARKER}\\boxed{{(1, 2]}}"
    assert grade([(text, "1 < x \\le 2")], workers=1) == [("(1, 2]", "correct")]


def test_integer_normalisation_and_no_answer():
    res = grade([("<|im_start|>answer\n\\boxed{025}", "25"), ("<|im_start|>answer\nI give up", "1")], workers=1)
    assert res == [("025", "correct"), (None, "no_answer")]
    # a signed zero is zero (the integer rule decides without math-verify)
    assert grade([("<|im_start|>answer\n\\boxed{-0}", "0"), ("<|im_start|>answer\n\\boxed{-00.0}", "0")]) == [
        ("-0", "correct"),
        ("-00.0", "correct"),
    ]


def read_jsonl(name):
    with bench_file(name).open() as f:
        return [json.loads(line) for line in f]


@pytest.fixture(scope="module")
def math500():
    return read_jsonl("math500.jsonl")


def as_model_output(solution: str) -> str:
    """A reference solution in the place of a budget-forced model's answer phase."""
    return "<|im_start|>think\nsome thinking \\boxed{-12345}\n" + S1_MARKER + solution


def test_math500_solutions_grade_correct_against_own_answer(math500):
    """The full path (answer segment, extraction, integer rule / math-verify in 2 worker processes) on the 500
    reference solutions; ~5 s on 2 cores. Every one grades correct."""
    items = [(as_model_output(r["solution"]), r["answer"]) for r in math500]
    results = grade(items, workers=2, kind=benchmarks.kind("math500"))
    failed = [(r["unique_id"], v) for r, (_, v) in zip(math500, results, strict=True) if v != "correct"]
    assert failed == []


def test_math500_solutions_grade_wrong_against_other_answers(math500):
    items = [(as_model_output(r["solution"]), math500[(i + 1) % len(math500)]["answer"]) for i, r in enumerate(math500)]
    verdicts = [v for _, v in grade(items, workers=2)]
    correct = [i for i, v in enumerate(verdicts) if v == "correct"]
    assert correct == [22, 186, 403]  # neighbours that share the answer ("7" and "7"), 0.6 %


def test_aime24_solutions_grade_correct():
    """AoPS solutions end in "\\boxed{104.}", "\\boxed{\\textbf{(073)}}", ...; one has no final answer at all."""
    recs = read_jsonl("aime24.jsonl")
    golds = {r["problem_id"]: r["gold"] for r in benchmarks.load("aime24", str(bench_file("aime24.jsonl")))}
    items = [(as_model_output(r["solution"]), golds[str(r["id"])]) for r in recs]
    verdicts = [v for _, v in grade(items, workers=2)]
    assert verdicts.count("correct") >= 29 and set(verdicts) <= {"correct", "no_answer"}


@pytest.mark.parametrize(
    ("answer", "gold", "verdict"),
    [
        ("\\boxed{025}", "25", "correct"),
        ("\\boxed{25}", "025", "correct"),
        ("\\boxed{27}", "27", "correct"),
        ("\\boxed{27.0}", "27", "correct"),
        ("\\boxed{27}", "27.0", "correct"),
        ("The answer is $\\boxed{27}$.", "27", "correct"),
        ("Answer: 27", "27", "correct"),
        ("Final Answer: 27.0", "27", "correct"),
        ("**Answer:** $27$", "27", "correct"),
        ("\\boxed{104.}", "104", "correct"),
        ("\\boxed{\\textbf{(073)}}", "73", "correct"),
        ("\\boxed{-1}", "-1", "correct"),
        ("\\boxed{-1.0}", "-1", "correct"),
        ("\\boxed{1}", "-1", "wrong"),
        ("\\boxed{26}", "27", "wrong"),
        ("\\boxed{27.5}", "27", "wrong"),
        ("Answer: 270", "27", "wrong"),
        ("\\boxed{\\frac{54}{2}}", "27", "correct"),  # not an integer string: math-verify decides
        ("I could not finish.", "27", "no_answer"),
    ],
)
def test_aime_amc_answer_formats(answer, gold, verdict):
    assert grade([(S1_MARKER + answer, gold)], workers=1)[0][1] == verdict


def test_as_integer():
    assert [as_integer(t) for t in ("025", "27.0", "-1.0", "\\text{27}", "(5)", "104.")] == [25, 27, -1, 27, 5, 104]
    assert [as_integer(t) for t in ("27.5", "1,000", "2^5", "\\text{a} + \\text{b}", "", "x")] == [None] * 6


LETTER_FORMS = [
    "{L}",
    "({L})",
    "{L})",
    "{L}.",
    "\\text{{{L}}}",
    "\\textbf{{({L})}}",
    "**{L}**",
    "${L}$",
    "{l}",
    "({L}) {text}",
]


@pytest.mark.parametrize("form", LETTER_FORMS)
def test_choice_letter_forms(form):
    for letter in "ABCD":
        text = form.format(L=letter, l=letter.lower(), text="some option")
        assert choice_letter(text) == letter, text
        boxed = grade([(S1_MARKER + f"so \\boxed{{{text}}}", letter)], workers=1, kind="choice")
        answered = grade([(S1_MARKER + f"Reasoning.\n\nAnswer: {text}\n\nBecause ...", letter)], kind="choice")
        assert boxed == answered == [(letter, "correct")], text


@pytest.mark.parametrize(
    "text",
    [
        "C or D",
        "E",
        "AB",
        "\\frac{1}{2}",
        "42",
        "CD)",
        "(C or D)",
        "none",
        # free text that opens with a capital letter names no option
        "A possible approach is to compare the energies",
        "The answer is",
        "Answers: C",
        # a lead-in, a verdict or a justification does not hide a second option
        "The answer is C or D",
        "The answer is (A) and (C)",
        "Option C or D",
        "C, or D",
        "C; D",
        "c, d",
        "C is correct, D is not",
        "C, since D is wrong",
        "C because (D) fails",
    ],
)
def test_choice_rejects_other_answers(text):
    assert choice_letter(text) is None
    assert grade([(S1_MARKER + f"Answer: {text}", "C")], kind="choice") == [(text, "unparsable")]


@pytest.mark.parametrize(
    "text",
    [
        "The answer is C",
        "The answer is: C",
        "the final answer is (C)",
        "The correct answer is **C**",
        "The answer is $C$",
        "The correct answer is (C) 4.2 eV",
        "So the answer is \\text{C}",
        "Option C",
        "option (c)",
        "Choice C.",
        "Correct option: C",
        "C is correct",
        "C is the correct answer",
        "(C) is the answer",
        "C, since the other options violate energy conservation",
        "C; the others are too small",
        "C because $A = 2$ only in the limit",  # a letter inside math is not an option
        "**C**",
        "**The answer is C**",
    ],
)
def test_choice_lead_ins_and_justifications(text):
    """Like the math path's lead-in (``_LEAD_IN_RE``): "The answer is C", "Option C", "C is correct", "C, since ..."
    name C; before, they were ``unparsable``."""
    assert choice_letter(text) == "C", text
    assert grade([(S1_MARKER + f"Reasoning.\n\nAnswer: {text}\n\nBecause ...", "C")], kind="choice") == [
        ("C", "correct")
    ]
    assert grade([(S1_MARKER + f"Answer: {text}", "B")], kind="choice") == [("C", "wrong")]


def test_choice_markdown_answer_lines():
    for text in ("**Answer:** C", "**Answer:**\n**C**", "Answer: **(C)**\n\nwhy", "ANSWER: c", "answer:C."):
        assert grade([(S1_MARKER + text, "C")], kind="choice") == [("C", "correct")], text


def test_choice_no_answer_and_bad_gold():
    assert grade([(S1_MARKER + "I am not sure.", "A")], kind="choice") == [(None, "no_answer")]
    with pytest.raises(ValueError, match="one letter"):
        grade([(S1_MARKER + "Answer: A", "27")], kind="choice")
    with pytest.raises(ValueError, match="grading kind"):
        grade([(S1_MARKER + "Answer: A", "A")], kind="judge")


def test_gpqa_letters_under_all_24_permutations():
    """A synthetic question, every order of its options: the gold letter is graded correct in each form and every
    other letter wrong, and the prompt's gold line holds the correct text."""
    texts = ["w1", "w2", "w3", "right"]  # gpqa_diamond.FIELDS order: 3 incorrect, then the correct answer
    for perm in itertools.permutations(range(4)):
        prompt = gpqa_diamond.format_prompt("Q?", [texts[j] for j in perm])
        gold = "ABCD"[perm.index(gpqa_diamond.CORRECT)]
        assert f"\n{gold}) right" in prompt
        items = []
        for form in LETTER_FORMS:
            items += [(S1_MARKER + f"\\boxed{{{form.format(L=x, l=x.lower(), text='t')}}}", gold) for x in "ABCD"]
        got = grade(items, kind="choice")
        want = [(x, "correct" if x == gold else "wrong") for _ in LETTER_FORMS for x in "ABCD"]
        assert got == want, perm


def test_grade_rows_on_real_gpqa_golds():
    recs = benchmarks.load("gpqa_diamond", str(bench_file("gpqa_diamond.jsonl")))
    gold = {r["problem_id"]: r["gold"] for r in recs}
    common = dict(
        model="m", variant="dense", bench="gpqa_diamond", seed=7, budget=512, thinking_tokens=5, answer_stopped=True
    )
    gen = []
    for r in recs:
        other = "ABCD"[("ABCD".index(r["gold"]) + 1) % 4]
        for letter in (r["gold"], other):
            gen.append(
                dict(common, problem_id=r["problem_id"], hit_budget=False, full_text=S1_MARKER + f"Answer: {letter}")
            )
    rows = grade_rows(gen, gold, impl_version=2, workers=1, timeout=5, kind=benchmarks.kind("gpqa_diamond"))
    assert [r["correct"] for r in rows] == [True, False] * len(recs)
    assert all(r["extracted"] in "ABCD" and r["verdict"] in ("correct", "wrong") for r in rows)


def test_jobs_grade_uses_the_benchmark_kind(tmp_path):
    from prunetts import artifacts, jobs

    recs = [dict(problem_id="q1", prompt="Q?\n\nA) a\nB) b\nC) c\nD) d", gold="C", metadata={})]
    artifacts.write("benchmark", benchmarks.rows("gpqa_diamond", recs, 1), tmp_path / "bench.parquet")
    gen = dict(model="m", variant="dense", bench="gpqa_diamond", seed=7, budget=16, impl_version=1, problem_id="q1")
    gen.update(thinking_tokens=3, hit_budget=False, waits=0, answer_tokens=2, answer_stopped=True)
    gen.update(thinking_text="t", answer_text="")
    rows = [dict(gen, full_text=S1_MARKER + "Answer: (c)"), dict(gen, full_text=S1_MARKER + "Answer: 3")]
    rows[1]["answer_stopped"] = False  # cut at max_gen_toks: graded as it stands, and marked
    for r in rows:
        r["answer_text"] = r["full_text"]
        r.update(think_seconds=0.0, answer_seconds=0.0)
    artifacts.write("generations", rows, tmp_path / "gen.parquet")
    out = tmp_path / "grades.parquet"

    def grade(gen_file: str, bench: str = "gpqa_diamond", **kw):
        paths = (str(tmp_path / gen_file), str(tmp_path / "bench.parquet"), str(out))
        jobs.grade(*paths, bench=bench, workers=1, timeout_s=5, **kw)
        return artifacts.read("grades", out).to_pydict()

    graded = grade("gen.parquet")
    assert graded["verdict"] == ["correct", "unparsable"] and graded["extracted"] == ["C", "3"]
    assert graded["answer_stopped"] == [True, False]
    # graded after the model's own delimiter (Qwen3's </think>): the thinking's "Answer: (a)" is not the answer
    qwen3 = [dict(rows[0], full_text="Answer: (a)\n</think>C")]
    artifacts.write("generations", qwen3, tmp_path / "gen3.parquet")
    assert grade("gen3.parquet", delimiters="qwen3")["verdict"] == ["no_answer"]  # s1's marker: "A", wrong
    with pytest.raises(ValueError, match="holds benchmark"):
        grade("gen.parquet", bench="aime24")


# an unboxed "Answer:" tail (what follows the forced "Final Answer:" when the model writes no box): graded on its first
# line, parsed as written when it is prose, boxed when it is a bare expression (METHODS 7.4: math-verify on the answer)
ANSWER_LINES = [
    ("**42**", "42", "correct"),
    ("The final answer is 42", "42", "correct"),
    ("42\n\nBecause the sum is 42.", "42", "correct"),
    ("42\n\nBecause 2+3=5.", "42", "correct"),
    ("42\n\nBecause 2+3=5.", "5", "wrong"),
    # later lines that no justification word opens: still only the first line answers (joined, the line is prose
    # and is graded on the expression it ends in, 6 and 3)
    ("42\n\nThe digits of 42 sum to 6.", "42", "correct"),
    ("\\frac{1}{2}\n\nThe other root is 3.", "\\frac12", "correct"),
    ("3\\sqrt{2}", "3\\sqrt{2}", "correct"),
    ("The final answer is 3\\sqrt{2}.", "3\\sqrt{2}", "correct"),
    ("\n$$\n\\frac{1}{2}\n$$\nsince the halves", "\\frac{1}{2}", "correct"),
    ("\\[ \\dfrac{3}{4} \\]", "\\frac{3}{4}", "correct"),
    ("(1, 2)", "(1,2)", "correct"),
    ("The answer is $\\frac{1}{2}$ because", "\\frac12", "correct"),
    ("x^2 + 1", "x^2+1", "correct"),
    ("2\\pi", "2\\pi", "correct"),
    ("2\\pi", "\\pi", "wrong"),
    ("**", "1", "no_answer"),
    # the answer on a later line: emphasis- or lead-in-only lines, an open math environment, a colon
    ("\n**\n\n42", "42", "correct"),
    ("The final answer is\n\n$\\frac{1}{2}$", "\\frac12", "correct"),
    ("The answer is $$\n\\frac12\n$$", "\\frac12", "correct"),
    ("$\n\\frac12\n$", "\\frac12", "correct"),
    ("The smallest possible value is:\n$$\n5\n$$", "5", "correct"),
    (
        "\\begin{pmatrix} -1/3 \\\\\n 2/3 \\\\\n 5/3 \\end{pmatrix}",
        "\\begin{pmatrix} -1/3 \\\\ 2/3 \\\\ 5/3 \\end{pmatrix}",
        "correct",
    ),
    # units after LaTeX are not prose
    ("3\\sqrt{2} square units", "3\\sqrt{2}", "correct"),
    ("2\\pi square inches", "2\\pi", "correct"),
    ("Evelyn", "\\text{Evelyn}", "correct"),
    # a single letter after LaTeX is a variable, not a unit (MATH500 test/precalculus/24313.json: gold "\\cot x")
    ("\\cot x", "\\cot x", "correct"),
    ("2\\sin x", "2\\sin x", "correct"),
    ("\\log_2 x", "\\log_2 x", "correct"),
    ("\\sqrt{2} a", "\\sqrt{2} a", "correct"),
    ("\\sin xy", "\\sin xy", "correct"),  # a function's argument
    ("\\cot x", "\\tan x", "wrong"),
    ("2\\sin x", "2\\cos x", "wrong"),
    ("\\sqrt{2} a", "\\sqrt{2}", "wrong"),  # was "correct": the variable was cut as a unit
    ("x", "2x", "wrong"),
    ("5\\sqrt{3} cm", "5\\sqrt{3}", "correct"),
    # prose with LaTeX outside a math environment: graded on the expression it ends in, not on the number before the
    # first command (math-verify reads "The area is 3\\sqrt{2}" as 3)
    ("The area is 3\\sqrt{2}.", "3\\sqrt{2}", "correct"),
    ("The area is 3\\sqrt{2}.", "3", "wrong"),
    ("The distance is 2\\sqrt{5} units.", "2\\sqrt{5}", "correct"),
    ("The distance is 2\\sqrt{5} units.", "2", "wrong"),
    ("The value is 5\\pi.", "5\\pi", "correct"),
    ("The value is 5\\pi.", "5", "wrong"),
    ("The largest root is 1+\\sqrt{3}", "1+\\sqrt{3}", "correct"),
    ("The largest root is 1+\\sqrt{3}", "1", "wrong"),
    ("The area is 3\\sqrt{2} \\text{ square units}", "3\\sqrt{2}", "correct"),
    ("so we get x = \\frac{\\pi}{4}", "\\frac{\\pi}{4}", "correct"),
    ("The probability is \\frac{1}{2}", "\\frac12", "correct"),
    # operators without a digit are an expression ("x+y"), and an environment name is no word
    ("So the sum is x+y", "x+y", "correct"),
    ("So it equals a-b.", "a-b", "correct"),
    ("The vector is \\begin{pmatrix} 1 \\\\ 2 \\end{pmatrix}.", "\\begin{pmatrix} 1 \\\\ 2 \\end{pmatrix}", "correct"),
    # letters inside a brace group the tail ends in are math, not prose (they stopped the tail, and math-verify read
    # the sentence as written: 4 passed)
    ("So we get \\sqrt{xy + 4}", "\\sqrt{xy+4}", "correct"),
    ("So we get \\sqrt{xy + 4}", "4", "wrong"),
    ("The answer is \\frac{ab}{2}.", "\\frac{ab}{2}", "correct"),
    # a lone variable ending the line is the answer (it was unparsable); other letters-only tails stay prose
    ("So the base is e", "e", "correct"),
    ("Then we pick n.", "n", "correct"),
    ("So the base is e", "2", "wrong"),
    # ... but not after math in the line: the letter there is prose, the answer comes before it (as written)
    ("We get 9 for n", "9", "correct"),
    ("This gives 42 as a", "42", "correct"),
    ("The solutions are x = 2 and y", "2", "correct"),
    # a \text group's words are prose even inside braces the tail entered (as written, as before)
    ("\\text{The answer is } 5", "5", "correct"),
    ("The answer is 5 (\\text{the minimum of } a_{n})", "5", "correct"),
    # a row break's vertical space is no product 2*p*t (math-verify 0.9 reads it so)
    (
        "\\begin{pmatrix} 1 \\\\[2pt] 2 \\end{pmatrix}",
        "\\begin{pmatrix} 1 \\\\ 2 \\end{pmatrix}",
        "correct",
    ),
    ("$\\begin{pmatrix} 1 \\\\ 2 \\end{pmatrix}$", "\\begin{pmatrix} 1 \\\\[3pt] 2 \\end{pmatrix}", "correct"),
    ("\\begin{pmatrix} 1 \\\\[2pt] 2 \\end{pmatrix}", "\\begin{pmatrix} 1 \\\\ 3 \\end{pmatrix}", "wrong"),
    # display math as inline math: math-verify drops \text units only inside $...$ and \(...\)
    ("\n\\[\n864 \\mbox{ inches}^2\n\\]", "864", "correct"),
    ("$$\\frac{270}{7} \\text{ degrees}$$", "\\frac{270}{7}", "correct"),
    ("\\[ 5.4 \\text{ cents} \\]", "5.4", "correct"),
    # units, a worded parenthetical or a justification after a plain number
    ("10 dollars", "10", "correct"),
    ("10 dollars", "12", "wrong"),
    ("10 dollars", "\\$10", "correct"),
    ("12 square units.", "12", "correct"),
    ("1,000 dollars", "1000", "correct"),
    ("3/4 cups", "\\frac34", "correct"),
    ("42 (since 2+3=5)", "42", "correct"),
    ("42 (since 2+3=5)", "5", "wrong"),  # was "correct": math-verify read the parenthetical's equation
    ("42 (since 6 \\cdot 7 = 42)", "42", "correct"),
    ("42, since 2+3=5", "42", "correct"),
    ("42 because 2+3=5", "5", "wrong"),
    ("The answer is 5 (rounded)", "5", "correct"),
    # unit symbols after a number, bare or ending prose (they were boxed as a product: 12 m^2, 10 N)
    ("12 m^2", "12", "correct"),
    ("The area is 12 m^2", "12", "correct"),
    ("The force is 10 N", "10", "correct"),
    ("The current is 2.5 A", "2.5", "correct"),
    ("The speed is 10 m/s", "10", "correct"),
    ("The acceleration is 9.8 m s^{-2}", "9.8", "correct"),
    ("The required value of c is 7 V", "7", "correct"),
    ("The force is 10 N", "12", "wrong"),
    ("The value is 5 x", "5", "wrong"),  # a lower-case letter alone may be a variable
    ("The value is 5 x", "5x", "correct"),
    ("The final answer is 10 N.", "10", "correct"),
    ("12 m^2.", "12", "correct"),
    # against a gold with letters they are the answer's variables (MATH500 has golds such as "3R^2")
    ("3 m^2", "3m^2", "correct"),
    ("3 m^2", "3", "correct"),
    ("2 A", "2A", "correct"),
    ("5 T", "5T", "correct"),
    ("The area is 3 s^2.", "3s^2", "correct"),
    ("2 A", "2B", "wrong"),
    ("1.5 m^2", "\\frac{3}{2}", "correct"),  # a number in LaTeX is a number
    ("10080 m^2", "10,\\!080", "correct"),
    # a hedge or a variable after the number keeps the whole line
    ("2 or 3", "2", "wrong"),
    ("2 (or 3)", "2", "wrong"),
    ("2 pi", "2", "wrong"),
    ("5 x", "5", "wrong"),
    ("3 thousand", "3", "wrong"),
    ("5 squared", "5", "wrong"),
    ("2 (plus 3)", "2", "wrong"),
]


def test_unboxed_answer_line_is_graded_like_an_answer():
    items = [(f"{S1_MARKER}Final Answer: {text}", gold) for text, gold, _ in ANSWER_LINES]
    got = [verdict for _, verdict in grade(items, workers=1)]
    assert got == [verdict for *_, verdict in ANSWER_LINES]


def test_answer_line_keeps_variables_and_drops_units():
    """``extracted`` stores what was graded: the number without its units, the LaTeX expression with its variable."""
    items = [
        (f"{S1_MARKER}Final Answer: {text}", gold)
        for text, gold in [("10 dollars", "10"), ("\\cot x", "\\cot x"), ("42 (since 2+3=5)", "42"), ("2 or 3", "2")]
    ]
    assert grade(items, workers=1) == [
        ("10", "correct"),
        ("\\cot x", "correct"),
        ("42", "correct"),
        ("2 or 3", "wrong"),
    ]


def test_box_content_is_graded_as_written():
    """Only an unboxed ``Answer:`` tail is cut to its first line / number (``answer_line``); a box is the model's
    own delimitation, graded whole, as the harness does: an expression broken over lines stays one expression, a
    justification in the box stays in ``extracted``."""
    items = [
        (f"{S1_MARKER}\\boxed{{x^2\n+ 2x + 1}}", "x^2+2x+1"),
        (f"{S1_MARKER}\\boxed{{\\frac{{1}}{{2}},\n\\frac{{1}}{{3}}}}", "\\frac{1}{2},\\frac{1}{3}"),
        (f"{S1_MARKER}\\boxed{{42 (since 6 \\cdot 7 = 42)}}", "42"),
    ]
    assert grade(items, workers=1) == [
        ("x^2\n+ 2x + 1", "correct"),
        ("\\frac{1}{2},\n\\frac{1}{3}", "correct"),
        ("42 (since 6 \\cdot 7 = 42)", "correct"),
    ]


def test_choice_answer_hedging_between_options_is_unparsable():
    assert choice_letter("(A) and (C)") is None and choice_letter("B) or D)") is None
    assert choice_letter("(C) 4.2 eV (the lower bound)") == "C" and choice_letter("C) which is (C)") == "C"
    # lower-case letters, letters inside words or math are not other options
    for text in (
        "B) v = 0.5c (in units of c)",
        "C) $\\frac{1}{(a+b)}$",
        "A) compound (b) is the product",
        "C) 2 (d) orbitals",
    ):
        assert choice_letter(text) == text[0]


def test_unit_symbols_need_a_capital_an_exponent_or_a_slash():
    """A bare lower-case symbol after a number stays in the answer line (it may be a variable; math-verify itself
    drops a bare "m"), where "N", "m^2" or "m/s" are cut as units against a numeric gold."""
    from prunetts.grading import answer_line

    assert [answer_line(x) for x in ("4 s", "5 m", "12 g.")] == ["4 s", "5 m", "12 g."]
    assert [answer_line(x) for x in ("4 N", "5 m^2", "10 m/s")] == ["4", "5", "10"]
    assert answer_line("4 N", unit_symbols=False) == "4 N"  # against a gold with letters


def test_the_grade_job_logs_the_verdicts_and_warns_of_traces_the_grader_could_not_judge(tmp_path, monkeypatch, caplog):
    """The job's summary line counts each verdict besides "correct"; grader timeouts or errors get a warning naming
    the fix."""
    import logging

    from prunetts import artifacts, grading, jobs

    recs = [dict(problem_id=f"q{i}", prompt="Q?\n\nA) a\nB) b\nC) c\nD) d", gold="C", metadata={}) for i in range(3)]
    artifacts.write("benchmark", benchmarks.rows("gpqa_diamond", recs, 1), tmp_path / "bench.parquet")
    gen = dict(model="m", variant="dense", bench="gpqa_diamond", seed=7, budget=16, impl_version=1)
    gen.update(thinking_tokens=3, hit_budget=False, waits=0, answer_tokens=2, answer_stopped=True, thinking_text="t")
    gen.update(think_seconds=0.0, answer_seconds=0.0)
    texts = ["Answer: (c)", "Answer: (a)", "Answer: (c)"]
    rows = [
        dict(gen, problem_id=f"q{i}", full_text=S1_MARKER + t, answer_text=S1_MARKER + t) for i, t in enumerate(texts)
    ]
    artifacts.write("generations", rows, tmp_path / "gen.parquet")
    real = grading.grade

    def grade_with_a_failure(items, *args, **kwargs):  # the third trace's grader fails
        out = real(items, *args, **kwargs)
        return out[:2] + [(out[2][0], "error")]

    monkeypatch.setattr(grading, "grade", grade_with_a_failure)
    paths = [str(tmp_path / f) for f in ("gen.parquet", "bench.parquet", "grades.parquet")]
    with caplog.at_level(logging.INFO, logger="prunetts"):
        jobs.grade(*paths, bench="gpqa_diamond", workers=1, timeout_s=5)
    messages = [r.getMessage() for r in caplog.records]
    assert "1/3 correct (wrong 1, error 1)" in messages
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert warnings == [
        "1 of 3 traces could not be graded (timeout or error; counted wrong): raise grading.timeout_s (now 5 s) and "
        "rerun grade"
    ]


def test_a_row_break_with_vertical_space_grades_as_a_plain_row_break():
    """``\\\\[2pt]`` in a matrix, boxed or in a math environment: math-verify 0.9 reads ``[2pt]`` as 2*p*t."""
    two_rows = "\\begin{pmatrix} 1 \\\\ 2 \\end{pmatrix}"
    spaced = "\\begin{pmatrix} 1 \\\\[2pt] 2 \\end{pmatrix}"
    items = [
        (f"{S1_MARKER}\\boxed{{{spaced}}}", two_rows),
        (f"{S1_MARKER}Final Answer: The vector is $${spaced}$$", two_rows),
        (f"{S1_MARKER}\\boxed{{{spaced}}}", "\\begin{pmatrix} 2 \\\\ 1 \\end{pmatrix}"),
    ]
    assert grade(items, workers=1) == [
        (spaced, "correct"),
        (f"The vector is $${spaced}$$", "correct"),
        (spaced, "wrong"),
    ]


# ---- found by a grading review (2026-12-02): each verdict below was another before --------------------------------
def _verdicts(pairs, kind="math"):
    return [v for _, v in grade([(S1_MARKER + text, gold) for text, gold in pairs], workers=1, kind=kind)]


def test_digit_groups_with_a_latex_space_are_one_number():
    """math-verify 0.9 reads "1\\,024" as 1 + 024 = 25: the thin-space separator of MATH's style guide."""
    pairs = [
        ("\\boxed{3\\,159}", "3159"),
        ("\\boxed{10\\,080}", "10,\\!080"),
        ("Final Answer: 3~159", "3159"),
        ("\\boxed{11\\,111\\,111\\,100}", "11,\\! 111,\\! 111,\\! 100"),
        ("\\boxed{3.141\\,592}", "3.141592"),
        ("\\boxed{1\\,024}", "25"),
        ("\\boxed{10\\,080}", "90^\\circ"),
        ("\\boxed{1\\,024}", "(1,24)"),
    ]
    assert _verdicts(pairs) == ["correct"] * 5 + ["wrong"] * 3


def test_a_decimal_must_agree_to_about_six_significant_digits():
    """math-verify rounds both sides to 6 decimal places, which made 0.0000667 equal .0000672 (MATH500's own gold)
    and 0.00199 equal 2/1005; 0.333333 still equals 1/3."""
    pairs = [
        ("\\boxed{0.0000667}", ".0000672"),
        ("\\boxed{0.000067}", ".0000672"),
        ("\\boxed{0.00199}", "\\frac{2}{1005}"),
        ("\\boxed{0.0000672}", ".0000672"),
        ("\\boxed{0.00199005}", "\\frac{2}{1005}"),
        ("\\boxed{0.333333}", "\\frac{1}{3}"),
        ("\\boxed{0.25}", "\\frac14"),
    ]
    assert _verdicts(pairs) == ["wrong"] * 3 + ["correct"] * 4


def test_an_inequality_answers_an_interval():
    pairs = [
        ("\\boxed{x > 2}", "(2,\\infty)"),
        ("\\boxed{3 < \\lambda \\le 4}", "(3,4]"),
        ("\\boxed{y \\le 0}", "(-\\infty, 0]"),
        ("\\boxed{x > 3}", "(2,\\infty)"),
        ("\\boxed{x \\ge 2}", "(2,\\infty)"),
    ]
    assert _verdicts(pairs) == ["correct"] * 3 + ["wrong"] * 2


def test_degree_signs_units_and_the_imaginary_unit():
    pairs = [
        ("\\boxed{90°}", "90^\\circ"),
        ("Final Answer: 90°", "90^\\circ"),
        ("\\boxed{90\\degree}", "90^\\circ"),
        ("\\boxed{45^{°}}", "45^\\circ"),
        ("Final Answer: 15 cm^2", "15\\mbox{ cm}^2"),  # a gold's units in a text group do not make it a letter gold
        ("Final Answer: 864 in^2", "864 \\mbox{ inches}^2"),
        ("Final Answer: 12 km/h", "12"),
        ("\\boxed{15 cm^2}", "15"),  # a box's number and units, as an answer line's
        ("\\boxed{6 - 5 i}", "6 - 5i"),
        ("\\boxed{2 i}", "2i"),
        ("\\boxed{45°}", "90^\\circ"),
        ("Final Answer: 15 cm^2", "16"),
        ("\\boxed{2 i}", "2"),  # no imaginary unit in the gold: i is a variable
    ]
    assert _verdicts(pairs) == ["correct"] * 10 + ["wrong"] * 3


def test_hedged_answer_lines_and_fraction_words():
    pairs = [("Final Answer: 27, or maybe 28", "28"), ("Final Answer: it is 3 or perhaps 4", "4")]
    assert _verdicts(pairs) == ["unparsable"] * 2
    restated = [  # an "or" that restates the answer or belongs to the question is no hedge
        ("Final Answer: The probability is 1/2, or 0.5", "\\frac{1}{2}"),
        ("Final Answer: The answer is 3, or equivalently 6/2", "3"),
        ("Final Answer: The smallest such n with 3 or more divisors is 4", "4"),
    ]
    assert _verdicts(restated) == ["correct"] * 3
    assert _verdicts([("Final Answer: 3 halves", "3"), ("Final Answer: 7 tenths", "7")]) == ["wrong"] * 2


@pytest.mark.parametrize(
    ("text", "letter"),
    [
        ("(C) or D", None),
        ("C) or D", None),
        ("(C)/(D)", None),
        ("C. Option D is also possible", None),
        ("(C), or maybe D", None),
        ("C, 2A + H2", "C"),  # capitals in the option's own text name no option
        ("C, the C=O stretch", "C"),
        ("C) A decrease in entropy", "C"),
        ("(C) B-field lines", "C"),
        ("C: 2D NMR", "C"),
        # a review of the fix: option texts with units, functions, lower-case letters and hedge-like words
        ("(B) 3.0 x 10^5 N/C", "B"),
        ("(D) 10 J/C", "D"),
        ("(C) P(A) = 0.5", "C"),
        ("(C) a/2", "C"),
        ("(C) but-2-ene", "C"),
        ("(D) Possibly the enol form", "D"),
        ("C, but only at low temperature", "C"),
        ("(C), since D is wrong", None),
        ("(C) is correct, D too", None),
        ("(B) / C", None),
    ],
)
def test_choice_option_text_and_hedges(text, letter):
    assert choice_letter(text) == letter


def test_degenerate_long_answer_lines_are_graded():
    """A budget-cut run of "$" on a GPQA answer line took time cubic in its length (20,000 of them: days), and an
    open "$" over many lines re-scanned the lines before each one; both now take one pass."""
    assert _verdicts([("Final Answer: " + "$" * 20_000 + " B", "B")], kind="choice") == ["unparsable"]
    assert _verdicts([("Final Answer: $x" + "\ny" * 50_000, "3")]) == ["unparsable"]
    assert _verdicts([("\\boxed{1" + " " * 200_000 + "x°}", "5")]) == ["unparsable"]  # a degree sign after spaces
