"""Benchmark loaders, one module each, normalised to one schema (the ``benchmark`` artifact):
problem_id, prompt (the user turn), gold (answer string), metadata (JSON)."""

from __future__ import annotations

import importlib
import json

BENCHMARKS = ("demo", "math500")


def load(name: str, source: str | None = None, limit: int | None = None, **options) -> list[dict]:
    if name not in BENCHMARKS:
        raise ValueError(f"benchmark {name!r} is not known (known: {', '.join(BENCHMARKS)})")
    records = importlib.import_module(f"prunetts.benchmarks.{name}").load(source, **options)
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
