"""Benchmark loaders, one module each, normalised to one schema (the ``benchmark`` artifact):
problem_id, prompt (the user turn), gold (answer string), metadata (JSON).

Each module has ``load(source, **its options) -> list[dict]`` and ``KIND``, its grading kind (``prunetts.grading``:
``math`` or ``choice``)."""

from __future__ import annotations

import importlib
import inspect
import json
from types import ModuleType

BENCHMARKS = ("demo", "math500", "aime24", "amc23", "gpqa_diamond")


def module(name: str) -> ModuleType:
    if name not in BENCHMARKS:
        raise ValueError(f"benchmark {name!r} is not known (known: {', '.join(BENCHMARKS)})")
    return importlib.import_module(f"prunetts.benchmarks.{name}")


def kind(name: str) -> str:
    """The grading kind of a benchmark: ``math`` or ``choice``."""
    return module(name).KIND


def options_of(name: str) -> tuple[str, ...]:
    """The options a benchmark takes besides ``source`` and ``limit`` (a loader's ``_``-prefixed parameters are
    internal, not config keys)."""
    params = inspect.signature(module(name).load).parameters
    return tuple(p for p in params if p != "source" and not p.startswith("_"))


def with_defaults(name: str, options: dict | None) -> dict:
    """A benchmark's config options with its loader's own defaults written in (``shuffle_seed: 0`` for gpqa_diamond):
    the prepare_benchmark rule's params and cache key, so that writing out a default reruns nothing (the schema
    fills ``source`` and ``limit``; an option of one benchmark only has no schema default). Unset options whose
    default is None (``revision``) stay unset."""
    params = inspect.signature(module(name).load).parameters
    defaults = {
        p: params[p].default
        for p in options_of(name)
        if params[p].default is not inspect.Parameter.empty and params[p].default is not None
    }
    out = {**defaults, **(options or {})}
    if "source" in out:  # "./data/math500.jsonl" and "data/math500.jsonl" are one file (checkpoint.one_spelling)
        from prunetts.checkpoint import one_spelling

        out["source"] = one_spelling(out["source"])
    return out


def load(name: str, source: str | None = None, limit: int | None = None, **options) -> list[dict]:
    mod = module(name)
    unknown = sorted(set(options) - set(options_of(name)))
    if unknown:
        known = ", ".join(("source", "limit", *options_of(name)))
        raise ValueError(f"benchmark {name!r} takes no option {', '.join(unknown)} (its options: {known})")
    records = mod.load(source, **options)
    from prunetts.records import InputFileError

    where = source or getattr(mod, "HF_ID", name)
    if not records:
        # every generation, grade and figure of it would be empty, and the summary would silently lack the benchmark
        raise InputFileError(
            f"benchmarks.{name}: {where} holds no problems; give a source with records (or drop the benchmark)"
        )
    seen: dict[str, int] = {}
    for r in records:
        pid = str(r["problem_id"])
        if pid in seen:
            # generations, grades and statistics are keyed by problem id: a repeat would overwrite its twin's results
            raise InputFileError(
                f"benchmarks.{name}: problem id {pid!r} appears twice in {where} (records {seen[pid]} and {len(seen)});"
                f" give every record a unique id field (e.g. contest and number: '2023-12B-{pid}')"
            )
        seen[pid] = len(seen)
    return records[:limit] if limit else records


def rows(name: str, records: list[dict], impl_version: int) -> list[dict]:
    return [
        dict(
            bench=name,
            impl_version=impl_version,
            problem_id=str(r["problem_id"]),
            prompt=r["prompt"],
            gold=str(r["gold"]),
            metadata=json.dumps(r.get("metadata", {}), sort_keys=True),
        )
        for r in records
    ]
