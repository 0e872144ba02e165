"""Texts of the demo task in the s1 chat format: prompt, ``<|im_start|>think``, trace, ``<|im_start|>answer``,
answer."""

from __future__ import annotations

from prunetts.demo import task

USER_TEMPLATE = "<|im_start|>user\n{question}<|im_end|>\n<|im_start|>assistant\n"


def full_text(p: task.Problem) -> str:
    """A complete worked example as the model was trained on it (same string as the tokenizer's chat template)."""
    return (
        USER_TEMPLATE.format(question=p.question)
        + task.THINK_START
        + task.trace(p)
        + task.THINK_END
        + "\n"
        + task.answer_text(p.answer)
        + "<|im_end|>"
    )


def calibration_texts(n: int) -> list[str]:
    return [full_text(p) for p in task.sample_problems("calibration", n)]
