"""Grading of budget-forced outputs (METHODS §7).

1. Answer segment: the text after the last ``<|im_start|>answer\\n`` (qwen3 delimiters: ``</think>``); else after the
   last ``<|im_start|>`` minus its first line; else the whole text (the s1 harness rule).
2. Extraction: the last ``\\boxed{...}`` / ``\\fbox{...}`` (brace-matched; also ``\\boxed 5``), else what follows the
   last ``Answer:``.
3. Verdict: digit strings on both sides compare as integers (the harness rule, "025" = 25); otherwise math-verify
   ``verify(gold, prediction)`` with the gold first. math-verify runs in worker processes, where its own
   ``signal.alarm`` timeouts work (they fail in threads); a hung worker is killed after ``timeout`` seconds per item
   and the item is graded ``timeout``.

Deviation from the paper: its harness fell back to a gpt-4o-mini equivalence judge where exact matching failed; we
have no network judge and use math-verify instead.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing as mp
import re
import sys

log = logging.getLogger(__name__)

VERDICTS = ("correct", "wrong", "no_answer", "unparsable", "timeout", "error")
_BOX_RE = re.compile(r"\\(?:boxed|fbox)")
_ANSWER_RE = re.compile(r"(?i)answer\s*:\s*")


S1_MARKER = "<|im_start|>answer\n"


def answer_segment(text: str, marker: str = S1_MARKER) -> str:
    """``marker``: the delimiter set's ``answer_marker`` (s1: ``<|im_start|>answer\\n``, qwen3: ``</think>``)."""
    if marker in text:
        return text.rsplit(marker, 1)[1]
    if "<|im_start|>" in text:
        tail = text.rsplit("<|im_start|>", 1)[1]
        return tail.split("\n", 1)[1] if "\n" in tail else ""
    return text


def last_boxed(text: str) -> str | None:
    """Content of the last ``\\boxed{...}`` (brace-matched) or ``\\boxed x``; None if there is none or it is open."""
    for m in reversed(list(_BOX_RE.finditer(text))):
        rest = text[m.end() :]
        if rest.startswith("{"):
            depth = 0
            for i, ch in enumerate(rest):
                if ch == "{":
                    depth += 1
                elif ch == "}":
                    depth -= 1
                    if depth == 0:
                        return rest[1:i]
            continue  # unbalanced: try an earlier box
        if rest.startswith(" "):
            token = rest[1:].split("$")[0].split()
            if token:
                return token[0]
    return None


def extract_answer(segment: str) -> str | None:
    boxed = last_boxed(segment)
    if boxed is not None:
        return boxed.strip()
    matches = list(_ANSWER_RE.finditer(segment))
    if matches:
        tail = segment[matches[-1].end() :].strip()
        return tail or None
    return None


def _integer_verdict(gold: str, extracted: str) -> str | None:
    """The harness rule for digit strings ("025" = 25); None when math-verify must decide."""
    g, e = gold.strip(), extracted.strip()
    if g.isascii() and g.isdigit() and e.isascii() and e.isdigit():
        return "correct" if int(g) == int(e) else "wrong"
    return None


def _verify(gold: str, extracted: str, timeout: int) -> str:
    """Runs in a worker process (its main thread, where math-verify's alarms work)."""
    try:
        from math_verify import ExprExtractionConfig, LatexExtractionConfig, parse, verify

        g = parse(f"${gold}$", [LatexExtractionConfig(), ExprExtractionConfig()], parsing_timeout=timeout)
        p = parse(
            f"$\\boxed{{{extracted}}}$" if "$" not in extracted else extracted,
            [LatexExtractionConfig(boxed_match_priority=0), ExprExtractionConfig()],
            parsing_timeout=timeout,
        )
        if not p:
            return "unparsable"
        return "correct" if verify(g, p, timeout_seconds=timeout) else "wrong"
    except Exception:  # noqa: BLE001 - a grader crash must cost one item, not the batch
        return "error"


def _verify_star(args):
    return _verify(*args)


@contextlib.contextmanager
def _spawn_without_main():
    """Spawned workers re-run the parent's ``__main__`` file unless it is hidden; under Snakemake that file is the
    rule's script, which must not run again in each worker."""
    main = sys.modules.get("__main__")
    saved = getattr(main, "__file__", None)
    if saved is not None and getattr(main, "__spec__", None) is None:
        del main.__file__
    try:
        yield
    finally:
        if saved is not None:
            main.__file__ = saved


def grade(
    items: list[tuple[str, str]], workers: int = 2, timeout: int = 5, marker: str = S1_MARKER
) -> list[tuple[str | None, str]]:
    """``items``: (full text, gold). Returns (extracted answer, verdict) per item, in order."""
    out: list[tuple[str | None, str] | None] = [None] * len(items)
    todo = []
    for i, (text, gold) in enumerate(items):
        extracted = extract_answer(answer_segment(text, marker))
        if extracted is None:
            out[i] = (None, "no_answer")
        elif (verdict := _integer_verdict(gold, extracted)) is not None:
            out[i] = (extracted, verdict)  # no worker needed (and none is started if all items are integers)
        else:
            out[i] = (extracted, "")
            todo.append((i, (gold, extracted, timeout)))
    # a hung item gets its timeout plus slack for the worker's own alarm to fire first
    guard = 2 * timeout + 5
    while todo:
        # spawn, not fork: the caller may hold threads (torch, pyarrow pools) that fork would copy mid-state
        with _spawn_without_main(), mp.get_context("spawn").Pool(max(1, workers)) as pool:
            futures = [(i, pool.apply_async(_verify_star, (args,))) for i, args in todo]
            done = 0
            for i, fut in futures:
                try:
                    verdict = fut.get(timeout=guard)
                except mp.TimeoutError:
                    verdict = "timeout"
                    out[i] = (out[i][0], verdict)
                    done += 1
                    log.warning("grading item %d hung past %ss; restarting the worker pool", i, guard)
                    pool.terminate()
                    break
                out[i] = (out[i][0], verdict)
                done += 1
            todo = todo[done:]
    return out  # type: ignore[return-value]


def grade_rows(
    gen_rows: list[dict],
    gold: dict[str, str],
    impl_version: int,
    workers: int,
    timeout: int,
    marker: str = S1_MARKER,
) -> list[dict]:
    results = grade([(r["full_text"], gold[r["problem_id"]]) for r in gen_rows], workers, timeout, marker)
    rows = []
    for r, (extracted, verdict) in zip(gen_rows, results, strict=True):
        rows.append(
            dict(
                model=r["model"],
                variant=r["variant"],
                bench=r["bench"],
                seed=r["seed"],
                budget=r["budget"],
                impl_version=impl_version,
                problem_id=r["problem_id"],
                thinking_tokens=r["thinking_tokens"],
                hit_budget=r["hit_budget"],
                gold=gold[r["problem_id"]],
                extracted=extracted,
                verdict=verdict,
                correct=verdict == "correct",
            )
        )
    return rows
