"""vLLM backend (GPU; optional extra ``.[gpu]``): the ``generate(requests)`` interface of ``backends.py`` on
``vllm.LLM``.

The budget sweep runs on it as ``sweep.two_phase``: phase 1 once at the largest budget, then every distinct answer
context (one per budget cut). The answer contexts of a problem share the prompt and a prefix of the thinking, so
``enable_prefix_caching`` (on by default here) serves that shared prefix from the KV blocks phase 1 already computed.

Sampling: vLLM samples with its own kernels, so it cannot use our uniform streams; each request gets a per-request
``seed`` instead (``Stream.engine_seed``: one per problem and phase, and per continuation offset after a "Wait").
A seeded vLLM request draws from its own generator, so a run capped at B is a prefix of the run capped at B_max,
which is what the prefix-shared sweep relies on; vLLM does not promise bit-identical logits across batch
compositions, so equality with independent runs holds up to that nondeterminism (the transformers backend is exact).
Samples differ from the transformers backend's for the same seed (different random numbers).

Token ids the model has embeddings for but the tokenizer cannot decode (Qwen2.5: 151665..152063) are excluded with
a ``logit_bias`` of -inf (the s1 README's "Token id out of vocabulary" problem); not with
``allowed_token_ids``, as vLLM 0.33's default model runner (V2) takes at most 1024 of those per request.

Not run on the CI machines (no GPU): tests drive this adapter with a fake engine that has ``LLM.generate``'s
signature and output shape.
"""

from __future__ import annotations

import logging
import os
import time

from prunetts.generation.backends import Request, Result, Sampling

log = logging.getLogger(__name__)

# logit_bias entries a request may carry on vLLM 0.33's default model runner (V2), which fails the engine on more
# (vllm/v1/worker/gpu/sample/logit_bias.py, MAX_NUM_LOGIT_BIAS_TOKENS); its V1 runner has no limit
MAX_LOGIT_BIAS = 1024


def padded_vocab_ban(n_valid: int | None, vocab_size: int | None) -> dict[int, float] | None:
    """A -inf bias for each id the model has an embedding for but the tokenizer cannot decode, or None. More of them
    than the V2 runner takes is one line here, before the model loads, not a dead engine at the first request."""
    if n_valid is None or not vocab_size or n_valid >= vocab_size:
        return None
    n = vocab_size - n_valid
    if n > MAX_LOGIT_BIAS and os.environ.get("VLLM_USE_V2_MODEL_RUNNER", "").strip() != "0":
        from prunetts.models import ModelError

        raise ModelError(
            f"generation: the model has {n} token ids past its tokenizer's {n_valid} ({vocab_size} embeddings); "
            f"keeping vLLM from sampling them takes a logit_bias of {n} entries a request, and vLLM 0.33's default "
            f"model runner takes at most {MAX_LOGIT_BIAS}: set VLLM_USE_V2_MODEL_RUNNER=0 in the job's environment "
            "(its V1 runner has no such limit) or use generation.backend: transformers"
        )
    return {i: float("-inf") for i in range(n_valid, vocab_size)}


def load_engine(model_path: str, dtype: str, trust_remote_code: bool, options: dict):
    from prunetts.config import ConfigError

    try:
        from vllm import LLM
    except ImportError as e:
        raise ConfigError(
            "generation.backend is 'vllm' but vllm is not installed: pip install -e '.[gpu]' (GPU machines only), "
            "or set generation.backend: transformers"
        ) from e
    # safetensors only, as everywhere else: vLLM's "auto" would unpickle .bin weights where no safetensors exist
    kwargs = {"enable_prefix_caching": True, "seed": 0, "load_format": "safetensors", **options}
    try:
        return LLM(
            model=model_path,
            # auto = bf16, as everywhere else on a GPU (resolve_dtype) and as the paper ran vLLM; vLLM's own "auto"
            # would compute an fp16 or fp32 checkpoint (a pruned one keeps its stored dtype) in fp16
            dtype="bfloat16" if dtype == "auto" else dtype,
            trust_remote_code=trust_remote_code,
            **kwargs,
        )
    except TypeError as e:
        if "keyword argument" not in str(e):
            raise
        # a misspelt option (LLM passes what it does not know on to EngineArgs, which rejects it): one line
        raise ConfigError(f"generation.vllm: {e}; use vllm.EngineArgs' option names") from e


class VLLMBackend:
    def __init__(
        self,
        engine,
        sampling: Sampling,
        n_valid: int | None = None,
        vocab_size: int | None = None,
        progress: bool = True,
        max_model_len: int | None = None,
    ):
        self.engine = engine
        # the context: vLLM ends a request there ("length") and rejects a prompt that fills it, failing the whole
        # generate call (vllm/v1/engine/input_processor.py, _validate_prompt_len); such a request is not sent
        self.max_model_len = max_model_len
        self.sampling = sampling
        self.progress = progress
        # only restrict when the embedding is larger than the tokenizer (a logits processor costs time). A -inf bias on
        # the ids past the tokenizer, not an allow-list of the valid ones: vLLM 0.33's default model runner (V2) takes
        # at most 1024 allowed_token_ids per request (vllm/v1/worker/gpu/sample/logit_bias.py,
        # MAX_NUM_ALLOWED_TOKEN_IDS), and as many logit_bias entries (MAX_LOGIT_BIAS; Qwen2.5 pads 399 ids, Qwen3 267)
        self.banned = padded_vocab_ban(n_valid, vocab_size)
        self.generated_tokens = 0
        self.decode_seconds = 0.0

    def _params(self, req: Request):
        from vllm import SamplingParams

        kw = dict(
            n=1,
            temperature=self.sampling.temperature,
            top_p=self.sampling.top_p,
            max_tokens=req.max_new
            if self.max_model_len is None
            else max(1, min(req.max_new, self.max_model_len - len(req.context))),
            stop_token_ids=sorted(req.stop_ids),
            seed=req.stream.engine_seed,
            skip_special_tokens=False,
            spaces_between_special_tokens=False,
        )
        if self.sampling.top_k > 0:
            kw["top_k"] = self.sampling.top_k
        if self.banned is not None:
            kw["logit_bias"] = self.banned
        return SamplingParams(**kw)

    def generate(self, requests: list[Request], desc: str = "generate") -> list[Result]:
        wanted = [i for i, r in enumerate(requests) if r.max_new > 0]
        live = [i for i in wanted if self.max_model_len is None or len(requests[i].context) < self.max_model_len]
        if len(live) < len(wanted):
            log.warning(
                "%s: %d contexts fill the model's %d tokens (no room for a token; vLLM would reject them): empty",
                desc,
                len(wanted) - len(live),
                self.max_model_len,
            )
        results = [Result([], False) for _ in requests]
        if not live:
            return results
        t0 = time.perf_counter()
        outs = self.engine.generate(
            [{"prompt_token_ids": requests[i].context} for i in live],
            sampling_params=[self._params(requests[i]) for i in live],
            use_tqdm=self.progress,
        )
        seconds = time.perf_counter() - t0
        n = 0
        for i, out in zip(live, outs, strict=True):
            c = out.outputs[0]
            tokens = list(c.token_ids)
            # vLLM keeps a matched stop token id (or EOS) in token_ids (the text drops it); our results never hold it.
            # vLLM 0.33 checks stop ids before the length limit (vllm/v1/core/sched/utils.py, check_stop), so a stop id
            # sampled as the last allowed token ends as "stop"; testing the id counts it as a stop on an engine that
            # checks the length first too, as the harness (stop strings) and the transformers backend do
            stopped = bool(tokens) and tokens[-1] in requests[i].stop_ids
            if stopped:
                tokens.pop()
            stopped = stopped or c.finish_reason == "stop"
            # the whole call's wall time: vLLM's offline LLM keeps no per-request finish time with its stats off (the
            # default), so with vLLM think_seconds / answer_seconds are per phase, not per request
            results[i] = Result(tokens, stopped, seconds)
            n += len(tokens)
        self.generated_tokens += n
        self.decode_seconds += seconds
        log.info("%s: %d requests, %d tokens in %.1fs", desc, len(live), n, seconds)
        return results
