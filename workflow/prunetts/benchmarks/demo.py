"""The demo task's test split (``prunetts.demo.task``): digit sums mod 10, gold is one digit."""

from __future__ import annotations

from prunetts.demo import task

KIND = "math"


def load(source: str | None = None, _n: int = 100) -> list[dict]:  # _n: config.DEMO_TEST_PROBLEMS, not a config key
    return [
        dict(problem_id=p.id, prompt=p.question, gold=str(p.answer), metadata={"k": len(p.digits)})
        for p in task.sample_problems("test", _n)
    ]
