"""One generation job: a model (dense or pruned checkpoint) x a benchmark x a seed, every budget."""

from __future__ import annotations

import logging

from prunetts import artifacts
from prunetts.generation.backends import Sampling, TransformersBackend
from prunetts.generation.budget_forcing import DELIMITERS
from prunetts.generation.journal import Journal, checkpoint_fingerprint, file_digest
from prunetts.generation.prompts import prompt_ids
from prunetts.generation.sweep import Problem, budget_sweep, eos_ids
from prunetts.models import load_config, load_model, load_tokenizer

log = logging.getLogger(__name__)


def make_backend(model_path: str, tokenizer, generation: dict, model_cfg: dict, progress: bool = True):
    """The configured backend and the model config (for EOS ids)."""
    trust = model_cfg.get("trust_remote_code", False)
    sampling = Sampling(generation["temperature"], generation.get("top_p", 1.0), generation.get("top_k", 0))
    if generation.get("backend", "transformers") == "vllm":
        from prunetts.generation.vllm_backend import VLLMBackend, load_engine

        config = load_config(model_path, trust)  # before the engine: a bad config is one line, not a vLLM traceback
        engine = load_engine(model_path, generation.get("dtype", "auto"), trust, generation.get("vllm", {}))
        backend = VLLMBackend(
            engine,
            sampling,
            len(tokenizer),
            config.vocab_size,
            progress=progress,
            max_model_len=generation.get("vllm", {}).get("max_model_len"),
        )
        return backend, config
    lm = load_model(
        model_path,
        dtype=generation.get("dtype", "auto"),
        device=generation.get("device", "auto"),
        trust_remote_code=trust,
    )
    return TransformersBackend(
        lm, tokenizer, sampling, batch_size=generation.get("batch_size", 32), progress=progress
    ), lm.config


def fingerprint(model_path: str, bench_path: str, **inputs) -> dict:
    """Everything the samples depend on (journal.py); batch size and backend progress settings are left out because
    results do not depend on them."""
    g = {k: v for k, v in inputs.pop("generation").items() if k not in ("batch_size", "journal")}
    return {
        "checkpoint": checkpoint_fingerprint(model_path),
        "bench": file_digest(bench_path),
        "generation": g,
        **inputs,
    }


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
    delims = DELIMITERS[model_cfg.get("delimiters", "s1")]
    num_ignore, ignore_str = model_cfg.get("num_ignore", 0), model_cfg.get("ignore_str", "Wait")
    tokenizer = load_tokenizer(model_path, trust_remote_code=model_cfg.get("trust_remote_code", False))
    journal = None
    if generation.get("journal", True):
        fp = fingerprint(
            model_path,
            bench_path,
            generation=generation,
            seed=seed,
            budgets=sorted(budgets),
            delimiters=vars(delims),
            num_ignore=num_ignore,
            ignore_str=ignore_str,
            impl_version=impl_version,
        )
        journal = Journal(journal_path(out_path), fp)
        if len(journal.outcomes) == len(bench_tbl):
            log.info("every problem is in the journal; writing the Parquet without loading the model")
    backend = None
    problems = [
        Problem(r["problem_id"], prompt_ids(tokenizer, r["prompt"], model_cfg.get("system_prompt"))) for r in bench_tbl
    ]
    if journal is None or len(journal.outcomes) < len(bench_tbl):
        backend, config = make_backend(model_path, tokenizer, generation, model_cfg, progress)
        eos = eos_ids(tokenizer, config)
    else:
        eos = set()  # nothing to generate
    rows = budget_sweep(
        backend,
        tokenizer,
        problems,
        budgets,
        seed,
        delims,
        generation["max_gen_toks"],
        eos,
        num_ignore=num_ignore,
        ignore_str=ignore_str,
        journal=journal,
    )
    if backend is not None:
        log.info(
            "%d tokens in %.1fs (%.0f tok/s)",
            backend.generated_tokens,
            backend.decode_seconds,
            backend.generated_tokens / max(backend.decode_seconds, 1e-9),
        )
    prov = dict(model=model, variant=variant, bench=bench, seed=seed, impl_version=impl_version)
    artifacts.write("generations", [{**prov, **r} for r in rows], out_path)
    if journal is not None:
        journal.finish()


def journal_path(out_path: str) -> str:
    return out_path + ".journal.jsonl"
