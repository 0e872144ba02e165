"""Prompts as the paper's harness builds them: the problem as the user turn of the model's own chat template
(``--apply_chat_template``, no extra instruction), with the generation prompt opened."""

from __future__ import annotations

import json
from pathlib import Path

from prunetts.models import ModelError

_NO_TEMPLATE_FIX = (
    "prompts are the problem as the user turn of the model's chat template (the paper's harness), so a base model "
    "without one cannot be prompted: add its instruct model's template (chat_template.jinja beside the tokenizer "
    "files) or evaluate the instruct model"
)


def chat_template_problem(path: str | Path) -> str | None:
    """Why the tokenizer of local checkpoint ``path`` has no chat template, from its files alone (no tokenizer is
    loaded: the config check runs on every Snakemake call); None when it has one or cannot be told here."""
    p = Path(path)
    if (p / "chat_template.jinja").is_file() or (p / "chat_template.json").is_file():
        return None
    config = p / "tokenizer_config.json"
    if not config.is_file():
        return None  # no tokenizer at all, or one transformers builds otherwise: the job names it
    try:
        tok_config = json.loads(config.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return None  # named by the checkpoint checks
    if not isinstance(tok_config, dict) or tok_config.get("chat_template") or tok_config.get("auto_map"):
        return None  # a template, or the checkpoint's own tokenizer code (which may bring one)
    return f"{p}: the tokenizer has no chat template; {_NO_TEMPLATE_FIX}"


def stop_token_problem(path: str | Path, name: str) -> str | None:
    """Why delimiters ``name`` cannot end the thinking with local checkpoint ``path``'s tokenizer, from its files alone
    (``check_delimiters``'s rule, for the config check, which loads no tokenizer): the stop string is a single token
    only if it is a vocabulary entry or an added token: a whole JSON string in tokenizer.json (a chat template holds
    it inside longer strings only), or a token the other tokenizer files declare, which transformers adds
    (``declared_tokens``). None when it is, or without a tokenizer.json to tell."""
    from prunetts.generation.budget_forcing import DELIMITERS

    tokenizer_json = Path(path) / "tokenizer.json"
    try:
        text = tokenizer_json.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return None  # a sentencepiece model, or none at all: the generate job checks it on the loaded tokenizer
    declared = declared_tokens(path)
    has = {k: json.dumps(d.until_thinking) in text or d.until_thinking in declared for k, d in DELIMITERS.items()}
    if has[name]:
        return None
    return (
        f"delimiters {name} end the thinking at {DELIMITERS[name].until_thinking!r}, which {tokenizer_json} has no "
        f"single token for (budget forcing stops on one token); {_delimiters_fix(has)}"
    )


_SPECIAL_KEYS = ("bos_token", "eos_token", "unk_token", "sep_token", "pad_token", "cls_token", "mask_token")
_TOKEN_LISTS = ("additional_special_tokens", "extra_special_tokens")


def declared_tokens(path: str | Path) -> set[str]:
    """The added tokens a checkpoint declares outside tokenizer.json: tokenizer_config.json's
    ``added_tokens_decoder`` and special tokens, added_tokens.json, special_tokens_map.json (their values only, not
    any string such as a ``stop_strings`` entry)."""
    out: set[str] = set()

    def strings(x) -> None:  # a token as a string or {"content": ...}, or lists / name -> token maps of them
        if isinstance(x, str):
            out.add(x)
        elif isinstance(x, dict) and isinstance(x.get("content"), str):
            out.add(x["content"])
        elif isinstance(x, (list, dict)):
            for v in x.values() if isinstance(x, dict) else x:
                strings(v)

    for file in ("tokenizer_config.json", "special_tokens_map.json", "added_tokens.json"):
        try:
            data = json.loads((Path(path) / file).read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError):
            continue
        if not isinstance(data, dict):
            continue
        if file == "added_tokens.json":
            out.update(k for k in data if isinstance(k, str))
            continue
        for key in (*_SPECIAL_KEYS, *_TOKEN_LISTS):
            strings(data.get(key))
        decoder = data.get("added_tokens_decoder")
        if isinstance(decoder, dict):
            strings(list(decoder.values()))
    return out


def _delimiters_fix(single: dict[str, bool]) -> str:
    """The fix for delimiters whose thinking stop is no single token: a set whose stop is one (``single``: set name ->
    whether its stop is one token), else another tokenizer."""
    others = [k for k, ok in single.items() if ok]
    return f"use delimiters: {others[0]}" if others else "use a tokenizer that has it as a special token"


def prompt_ids(tokenizer, user_text: str, system_prompt: str | None = None) -> list[int]:
    if not getattr(tokenizer, "chat_template", None):
        raise ModelError(f"{tokenizer.name_or_path}: the tokenizer has no chat template; {_NO_TEMPLATE_FIX}")
    # None: the template's default (Qwen2.5's "You are Qwen, ..."); "" is an empty system turn, which suppresses it
    messages = ([{"role": "system", "content": system_prompt}] if system_prompt is not None else []) + [
        {"role": "user", "content": user_text}
    ]
    text = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    return tokenizer(text, add_special_tokens=False)["input_ids"]


def check_delimiters(tokenizer, name: str) -> None:
    """Budget forcing ends the thinking on one token (``Delimiters.until_thinking``): checked before the model loads,
    as one line naming the fix."""
    from prunetts.generation.budget_forcing import DELIMITERS

    def count(text: str) -> int:
        return len(tokenizer(text, add_special_tokens=False)["input_ids"])

    n_tokens = {k: count(d.until_thinking) for k, d in DELIMITERS.items()}
    stop, n = DELIMITERS[name].until_thinking, n_tokens[name]
    if n != 1:
        fix = _delimiters_fix({k: m == 1 for k, m in n_tokens.items()})
        raise ModelError(
            f"{tokenizer.name_or_path}: delimiters {name} end the thinking at {stop!r}, which this tokenizer splits "
            f"into {n} tokens (budget forcing stops on a single token); {fix} in the model's entry"
        )
