"""Grading: answer segment, extraction, and math-verify on real MATH500 rows."""

import json

import pytest

from prunetts.grading import answer_segment, extract_answer, grade, last_boxed
from tests.conftest import bench_file


def test_answer_segment_rules():
    text = "<|im_start|>think\nsteps \\boxed{1}\n<|im_start|>answer\nFinal Answer: \\boxed{7}"
    assert answer_segment(text) == "Final Answer: \\boxed{7}"
    assert answer_segment("x<|im_start|>answer\na<|im_start|>answer\nb") == "b"
    assert answer_segment("x<|im_start|>assistant\nline two") == "line two"
    assert answer_segment("no delimiter \\boxed{3}") == "no delimiter \\boxed{3}"


def test_extraction():
    assert last_boxed(r"\boxed{1} then \boxed{\frac{1}{2}}") == r"\frac{1}{2}"
    assert last_boxed(r"\fbox{x+1}") == "x+1"
    assert last_boxed(r"\boxed 5$") == "5"
    assert last_boxed(r"\boxed{2} \boxed{unclosed") == "2"
    assert extract_answer("so the Answer: 42") == "42"
    assert extract_answer("nothing here") is None


def test_thinking_box_is_ignored():
    text = "<|im_start|>think\n\\boxed{3}\n<|im_start|>answer\nThe answer is $\\boxed{4}$"
    assert grade([(text, "4")], workers=1) == [("4", "correct")]
    assert grade([(text, "3")], workers=1) == [("4", "wrong")]


def test_integer_normalisation_and_no_answer():
    res = grade([("<|im_start|>answer\n\\boxed{025}", "25"), ("<|im_start|>answer\nI give up", "1")], workers=1)
    assert res == [("025", "correct"), (None, "no_answer")]


@pytest.fixture(scope="module")
def math500():
    with bench_file("math500.jsonl").open() as f:
        return [json.loads(line) for line in f]


def test_math500_solutions_grade_correct_against_own_answer(math500):
    items = [(r["solution"], r["answer"]) for r in math500]
    verdicts = [v for _, v in grade(items, workers=2)]
    assert verdicts.count("correct") / len(items) >= 0.99


def test_math500_solutions_grade_wrong_against_other_answers(math500):
    items = [(r["solution"], math500[(i + 1) % len(math500)]["answer"]) for i, r in enumerate(math500)]
    verdicts = [v for _, v in grade(items, workers=2)]
    assert verdicts.count("correct") / len(items) <= 0.02
