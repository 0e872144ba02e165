"""Prompts as the paper's harness builds them: the problem as the user turn of the model's own chat template
(``--apply_chat_template``, no extra instruction; METHODS §1.2), with the generation prompt opened."""

from __future__ import annotations


def prompt_ids(tokenizer, user_text: str, system_prompt: str | None = None) -> list[int]:
    # None: the template's default (Qwen2.5's "You are Qwen, ..."); "" is an empty system turn, which suppresses it
    messages = ([{"role": "system", "content": system_prompt}] if system_prompt is not None else []) + [
        {"role": "user", "content": user_text}
    ]
    text = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    return tokenizer(text, add_special_tokens=False)["input_ids"]
