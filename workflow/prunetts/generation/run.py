"""One generation job: a model (dense or pruned checkpoint) x a benchmark x a seed, every budget."""

from __future__ import annotations

import logging

from prunetts import artifacts
from prunetts.generation.backends import Sampling, TransformersBackend
from prunetts.generation.budget_forcing import DELIMITERS
from prunetts.generation.prompts import prompt_ids
from prunetts.generation.sweep import Problem, budget_sweep, eos_ids
from prunetts.models import load_model, load_tokenizer

log = logging.getLogger(__name__)


def generate(
    model_path: str,
    bench_path: str,
    out_path: str,
    *,
    model: str,
    variant: str,
    bench: str,
    seed: int,
    budgets: list[int],
    generation: dict,
    model_cfg: dict,
    impl_version: int,
    progress: bool = True,
) -> None:
    bench_tbl = artifacts.read("benchmark", bench_path).to_pylist()
    trust = model_cfg.get("trust_remote_code", False)
    tokenizer = load_tokenizer(model_path, trust_remote_code=trust)
    lm = load_model(
        model_path,
        dtype=generation.get("dtype", "auto"),
        device=generation.get("device", "auto"),
        trust_remote_code=trust,
    )
    backend = TransformersBackend(
        lm,
        tokenizer,
        Sampling(generation["temperature"], generation.get("top_p", 1.0), generation.get("top_k", 0)),
        batch_size=generation.get("batch_size", 32),
        progress=progress,
    )
    problems = [
        Problem(r["problem_id"], prompt_ids(tokenizer, r["prompt"], model_cfg.get("system_prompt"))) for r in bench_tbl
    ]
    rows = budget_sweep(
        backend,
        tokenizer,
        problems,
        budgets,
        seed,
        DELIMITERS[model_cfg.get("delimiters", "s1")],
        generation["max_gen_toks"],
        eos_ids(tokenizer, lm.config),
    )
    log.info(
        "%d tokens in %.1fs (%.0f tok/s)",
        backend.generated_tokens,
        backend.decode_seconds,
        backend.generated_tokens / max(backend.decode_seconds, 1e-9),
    )
    prov = dict(model=model, variant=variant, bench=bench, seed=seed, impl_version=impl_version)
    artifacts.write("generations", [{**prov, **r} for r in rows], out_path)
