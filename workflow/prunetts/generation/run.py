"""One generation job: a model (dense or pruned checkpoint) x a benchmark x a seed, every budget."""

from __future__ import annotations

import logging

from prunetts import artifacts
from prunetts.config import generation_trigger
from prunetts.generation.backends import Sampling, TransformersBackend
from prunetts.generation.budget_forcing import DELIMITERS
from prunetts.generation.journal import Journal, checkpoint_fingerprint, file_digest
from prunetts.generation.prompts import check_delimiters, prompt_ids
from prunetts.generation.sweep import Problem, budget_sweep, eos_ids
from prunetts.models import load_config, load_model, load_tokenizer

log = logging.getLogger(__name__)


def make_backend(model_path: str, tokenizer, generation: dict, model_cfg: dict, progress: bool = True):
    """The configured backend, the model config (for EOS ids) and the context length answers stop at: the
    ``max_model_len`` the vLLM engine runs with (the option; without it, what the engine derived from the config, as
    in the paper's harness; for ``max_model_len: -1``, what vLLM fitted into GPU memory), else a positive option,
    else the config's ``max_position_embeddings``."""
    trust = model_cfg.get("trust_remote_code", False)
    sampling = Sampling(generation["temperature"], generation.get("top_p", 1.0), generation.get("top_k", 0))
    if generation.get("backend", "transformers") == "vllm":
        from prunetts.generation.vllm_backend import VLLMBackend, load_engine, padded_vocab_ban

        config = load_config(model_path, trust)  # before the engine: a bad config is one line, not a vLLM traceback
        padded_vocab_ban(len(tokenizer), config.vocab_size)  # more padded ids than vLLM takes: before the load
        engine = load_engine(model_path, generation.get("dtype", "auto"), trust, generation.get("vllm", {}))
        # the engine's own value first: vLLM 0.33 takes max_model_len: -1 as "fit into GPU memory" and then lowers
        # it (vllm/config/model.py, max_model_len; v1/core/kv_cache_planning.py, _auto_fit_max_model_len)
        option = generation.get("vllm", {}).get("max_model_len")
        limit = engine_max_model_len(engine) or (option if isinstance(option, int) and option > 0 else None)
        limit = limit or getattr(config, "max_position_embeddings", None)
        backend = VLLMBackend(
            engine, sampling, len(tokenizer), config.vocab_size, progress=progress, max_model_len=limit
        )
        return backend, config, limit
    lm = load_model(
        model_path,
        dtype=generation.get("dtype", "auto"),
        device=generation.get("device", "auto"),
        trust_remote_code=trust,
    )
    batch_size = generation.get("batch_size", 32)
    backend = TransformersBackend(lm, tokenizer, sampling, batch_size=batch_size, progress=progress)
    return backend, lm.config, getattr(lm.config, "max_position_embeddings", None)


def engine_max_model_len(engine) -> int | None:
    """The context length a ``vllm.LLM`` runs with (None where this vLLM does not expose it)."""
    config = getattr(getattr(engine, "llm_engine", None), "model_config", None)
    return getattr(config, "max_model_len", None)


def generation_eos(model_path: str) -> list[int]:
    """The end-of-sequence ids of the checkpoint's ``generation_config.json`` (Qwen: ``<|im_end|>`` and
    ``<|endoftext|>``); vLLM and ``model.generate`` stop on every one of them, and so does the sweep."""
    import json
    from pathlib import Path

    f = Path(model_path) / "generation_config.json"
    if not f.is_file():
        return []
    value = json.loads(f.read_text()).get("eos_token_id")
    return [value] if isinstance(value, int) else list(value or [])


def fingerprint(model_path: str, bench_path: str, trust_remote_code: bool = False, **inputs) -> dict:
    """Everything the samples depend on (journal.py); the run settings (batch size, vLLM's memory share, ...) are
    left out because results do not depend on them (``config.generation_trigger``). ``trust_remote_code`` (the
    checkpoint's own code runs) only where set, so journals written without it keep their fingerprint."""
    g = generation_trigger(inputs.pop("generation"))
    return {
        "checkpoint": checkpoint_fingerprint(model_path, code=trust_remote_code),
        **({"trust_remote_code": True} if trust_remote_code else {}),
        "bench": file_digest(bench_path),
        "generation": g,
        **inputs,
    }


def prompts_digest(problems: list[Problem]) -> str:
    """sha256 of every problem's id and prompt token ids, in order."""
    import hashlib
    import json

    h = hashlib.sha256()
    for p in problems:
        h.update(json.dumps([p.problem_id, list(p.prompt_ids)]).encode())
    return h.hexdigest()


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
    check_delimiters(tokenizer, model_cfg.get("delimiters", "s1"))  # before a model is loaded, as the chat template
    problems = [
        Problem(r["problem_id"], prompt_ids(tokenizer, r["prompt"], model_cfg.get("system_prompt"))) for r in bench_tbl
    ]
    journal, n_todo = None, len(problems)
    if generation.get("journal", True):
        fp = fingerprint(
            model_path,
            bench_path,
            trust_remote_code=model_cfg.get("trust_remote_code", False),
            # the token ids themselves: a new system prompt, chat template or tokenizer must not resume old samples
            prompts=prompts_digest(problems),
            generation=generation,
            seed=seed,
            budgets=sorted(budgets),
            delimiters=vars(delims),
            num_ignore=num_ignore,
            ignore_str=ignore_str,
            impl_version=impl_version,
        )
        journal = Journal(journal_path(out_path), fp)
        # this benchmark's problems only: a line for another problem id (a hand-merged journal) fills no gap
        n_todo = sum(p.problem_id not in journal.outcomes for p in problems)
        if len(journal.outcomes) > len(problems) - n_todo:
            log.warning(
                "%s: %d lines are for problems not in %s; ignored",
                journal.path,
                len(journal.outcomes) - (len(problems) - n_todo),
                bench_path,
            )
        if not n_todo:
            log.info("every problem is in the journal; writing the Parquet without loading the model")
    backend = None
    if n_todo:
        backend, config, context_limit = make_backend(model_path, tokenizer, generation, model_cfg, progress)
        eos = eos_ids(tokenizer, config) | set(generation_eos(model_path))
    else:
        eos, context_limit = set(), None  # nothing to generate
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
        context_limit=context_limit,
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
        journal.close()  # kept: a lost Parquet is rewritten from it without generating (journal.py)


def journal_path(out_path: str) -> str:
    return out_path + ".journal.jsonl"
