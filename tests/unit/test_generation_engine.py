"""Generation engine: the "Wait" extension, the qwen3 delimiters, continuous batching, the vLLM adapter (fake
engine), the journal (kill -9 and resume), and models with sliding-window attention layers."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import pyarrow.parquet as pq
import pytest

from prunetts.generation import backends as backends_mod
from prunetts.generation.backends import Result, Sampling, TransformersBackend
from prunetts.generation.budget_forcing import DELIMITERS
from prunetts.generation.prompts import prompt_ids
from prunetts.generation.sweep import Problem, budget_sweep, eos_ids
from prunetts.models import load_model, load_tokenizer
from tests.unit.test_budget_forcing import without_timings

S1, QWEN3 = DELIMITERS["s1"], DELIMITERS["qwen3"]


def _problems(tok, n):
    from prunetts.demo import task

    return [Problem(p.id, prompt_ids(tok, p.question)) for p in task.sample_problems("test", n)]


@pytest.fixture(scope="module")
def demo(demo_model_dir):
    tok = load_tokenizer(str(demo_model_dir))
    lm = load_model(str(demo_model_dir), dtype="float32", device="cpu")
    return tok, lm


def _sweep(demo, budgets, temperature=0.0, n=6, batch_size=4, delims=S1, **kw):
    tok, lm = demo
    backend = TransformersBackend(lm, tok, Sampling(temperature), batch_size=batch_size, progress=False)
    rows = budget_sweep(backend, tok, _problems(tok, n), budgets, 7, delims, 12, eos_ids(tok, lm.config), **kw)
    return [without_timings(r) for r in rows]


# ---- "Wait" ----------------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def eager(demo_model_dir):
    """The demo model with a bias towards ending its thinking, so that it tries to stop again after each "Wait"
    (the plain demo model, once pushed off its training distribution by a "Wait", rambles until the budget)."""

    tok = load_tokenizer(str(demo_model_dir))
    return tok, _stop_biased(load_model(str(demo_model_dir), dtype="float32", device="cpu"), tok, 11.0)


def _stop_biased(lm, tok, bias: float):
    """``lm`` with its head biased by ``bias`` towards the s1 thinking stop token ``<|im_start|>``."""
    import torch

    head = torch.nn.Linear(lm.lm_head.in_features, lm.lm_head.out_features, bias=True)
    with torch.no_grad():
        head.weight.copy_(lm.lm_head.weight)
        head.bias.zero_()
        head.bias[tok.convert_tokens_to_ids("<|im_start|>")] = bias
    lm.lm_head = head
    return lm


@pytest.mark.parametrize("temperature", [0.0, 1.0])
def test_wait_inserts_exactly_num_ignore_times_when_the_model_stops_early(eager, temperature):
    plain = {r["problem_id"]: r for r in _sweep(eager, [512], temperature, n=8)}
    assert all(not r["hit_budget"] and r["waits"] == 0 for r in plain.values())
    waited = _sweep(eager, [512], temperature, n=8, num_ignore=3, ignore_str="Wait")
    assert sum(not r["hit_budget"] for r in waited) >= 6
    for r in waited:
        p = plain[r["problem_id"]]
        # the first insertion comes exactly where the plain run stopped
        assert r["thinking_text"].startswith(p["thinking_text"] + "Wait")
        assert r["thinking_text"].count("Wait") == r["waits"]
        if r["hit_budget"]:  # the model rambled after an insertion: no further stop to override
            assert 1 <= r["waits"] <= 3 and r["thinking_tokens"] == 512
        else:
            assert r["waits"] == 3
    assert _sweep(eager, [512], temperature, n=8, num_ignore=0) == list(plain.values())


@pytest.mark.parametrize("temperature", [0.0, 1.0])
def test_wait_sweep_equals_independent_runs_and_two_phase(eager, temperature):
    budgets = [8, 16, 24, 512]
    fork = _sweep(eager, budgets, temperature, n=8, num_ignore=3, method="fork")
    assert any(0 < r["waits"] < 3 for r in fork if r["budget"] < 512)  # cuts that end between insertions
    assert fork == _sweep(eager, budgets, temperature, n=8, num_ignore=3, method="two_phase")
    shared = {(r["problem_id"], r["budget"]): r for r in fork}
    for b in budgets:
        for r in _sweep(eager, [b], temperature, n=8, num_ignore=3):
            assert shared[r["problem_id"], b] == r
            assert r["thinking_tokens"] <= b


# ---- the model's context ends every answer ------------------------------------------------------------------------
def test_answers_stop_where_the_context_ends_in_both_sweeps(demo):
    """With a context limit (vLLM's max_model_len; the config's max_position_embeddings on transformers) each answer
    stops where prompt + thinking + closing + answer reach it, identically in the forking and the two-phase sweep."""
    tok, _ = demo
    budgets = [8, 32, 64]
    free = _sweep(demo, budgets, 1.0, n=8, method="fork")
    prompt = {p.problem_id: len(p.prompt_ids) for p in _problems(tok, 8)}
    used = [prompt[r["problem_id"]] + len(tok(r["full_text"], add_special_tokens=False)["input_ids"]) for r in free]
    limit = sorted(used)[len(used) // 2]  # half of the answers run into it
    capped = _sweep(demo, budgets, 1.0, n=8, method="fork", context_limit=limit)
    assert capped == _sweep(demo, budgets, 1.0, n=8, method="two_phase", context_limit=limit)
    shorter = 0
    for r, f, n in zip(capped, free, used, strict=True):
        total = prompt[r["problem_id"]] + len(tok(r["full_text"], add_special_tokens=False)["input_ids"])
        assert total <= max(limit, n - f["answer_tokens"])  # no answer token past the context
        assert f["answer_text"].startswith(r["answer_text"])  # the same answer, cut
        shorter += r["answer_tokens"] < f["answer_tokens"]
        # answer_stopped: ended on an end token, i.e. before max_gen_toks (12) and before the context cut it
        assert f["answer_stopped"] == (f["answer_tokens"] < 12)
        assert r["answer_stopped"] == (f["answer_stopped"] and r["answer_tokens"] == f["answer_tokens"])
    assert shorter >= len(capped) // 3


def test_a_context_the_thinking_filled_gets_an_empty_answer_on_every_backend(demo, fake_vllm):
    """Where prompt + thinking + closing already fill the model's context, no answer token is generated: on the
    transformers backend (forking and two-phase sweeps alike) as on vLLM, which is sent no request then."""
    from prunetts.generation.vllm_backend import VLLMBackend

    tok, lm = demo
    problems = _problems(tok, 4)
    start = len(tok(S1.think_start, add_special_tokens=False)["input_ids"])
    limit = max(len(p.prompt_ids) for p in problems) + start + 8
    fork = _sweep(demo, [4, 64], 1.0, n=4, method="fork", context_limit=limit)
    assert fork == _sweep(demo, [4, 64], 1.0, n=4, method="two_phase", context_limit=limit)
    full = [r for r in fork if r["thinking_tokens"] > 8]
    assert full and all(r["answer_tokens"] == 0 and r["answer_text"] == "" for r in full)
    assert all(not r["answer_stopped"] for r in full)
    engine = FakeLLM(vocab=50, max_model_len=limit)
    backend = VLLMBackend(engine, Sampling(1.0), max_model_len=limit)
    rows = budget_sweep(backend, tok, problems, [4, 64], 7, S1, 12, eos_ids(tok, lm.config), context_limit=limit)
    assert all(r["answer_tokens"] == 0 for r in rows if r["thinking_tokens"] > 8)


def test_repeated_budgets_are_one_clear_error(demo):
    with pytest.raises(ValueError, match="distinct positive token counts"):
        _sweep(demo, [8, 8], 1.0, n=2, method="fork")


def test_a_budget_the_context_cannot_hold_is_named_before_generating(demo, caplog):
    tok, _ = demo
    longest = max(len(p.prompt_ids) for p in _problems(tok, 4))
    with caplog.at_level("WARNING", logger="prunetts.generation.sweep"):
        _sweep(demo, [8], 1.0, n=4, method="fork", context_limit=10_000)
        assert "leave no room" not in caplog.text
        _sweep(demo, [8], 1.0, n=4, method="fork", context_limit=longest + 8)
    assert "plus the largest budget 8 leave no room for an answer in the model's context" in caplog.text


def test_generation_config_end_ids_stop_generation(tmp_path, demo_model_dir):
    """generation_config.json's end ids (Qwen lists <|im_end|> and <|endoftext|>) stop a trace, as in vLLM."""
    import json
    import shutil

    from prunetts.generation.run import generation_eos

    assert generation_eos(str(demo_model_dir)) == [258]
    ckpt = shutil.copytree(demo_model_dir, tmp_path / "m")
    config = json.loads((ckpt / "generation_config.json").read_text())
    (ckpt / "generation_config.json").write_text(json.dumps({**config, "eos_token_id": [258, 257]}))
    assert generation_eos(str(ckpt)) == [258, 257]
    (ckpt / "generation_config.json").unlink()
    assert generation_eos(str(ckpt)) == []


# ---- qwen3 delimiters ----------------------------------------------------------------------------------------------
class ScriptedBackend:
    """``generate`` that thinks ``lengths[i]`` tokens then emits the stop token, and answers "\\boxed{7}"."""

    def __init__(self, tok, stop_id, lengths):
        self.tok, self.stop_id, self.lengths = tok, stop_id, lengths
        self.answer = tok("\\boxed{7}", add_special_tokens=False)["input_ids"]

    def generate(self, requests, desc=""):
        out = []
        for r in requests:
            if self.stop_id in r.stop_ids:  # thinking
                n = self.lengths[len(r.context)]  # contexts differ in length per problem
                gen = [self.tok.convert_tokens_to_ids("a")] * n
                stopped = n < r.max_new
                out.append(Result(gen[: r.max_new], stopped))
            else:
                out.append(Result(self.answer, True))
        return out


@pytest.mark.parametrize("delims", [S1, QWEN3])
def test_thinking_stops_at_the_delimiter_or_an_end_token_and_the_answer_at_an_end_token(demo_model_dir, delims):
    """The plan's stop sets: thinking ends at ``until_thinking`` or any EOS id (the harness's ``stop = [until_thinking]
    + until``), the answer at an EOS id only. Recorded from the requests of the two-phase sweep; the forking sweep
    reads the same plan."""
    tok = load_tokenizer(str(demo_model_dir))
    eos = {tok.eos_token_id, 7}
    seen = []

    class Recording:
        def generate(self, requests, desc=""):
            seen.extend(r.stop_ids for r in requests)
            return [Result([5], True) for _ in requests]

    budget_sweep(Recording(), tok, [Problem("p", [1, 2])], [4], 7, delims, 3, eos, method="two_phase")
    until = tok(delims.until_thinking, add_special_tokens=False)["input_ids"]
    assert len(until) == 1 and seen == [frozenset({*until, *eos}), frozenset(eos)]


def test_qwen3_delimiters_close_and_grade(demo):
    from prunetts.grading import grade

    tok, lm = demo
    problems = [Problem("short", [1, 2]), Problem("long", [1, 2, 3])]
    think_len = len(tok(QWEN3.think_start, add_special_tokens=False)["input_ids"])
    backend = ScriptedBackend(tok, tok.convert_tokens_to_ids("</think>"), {2 + think_len: 5, 3 + think_len: 50})
    rows = budget_sweep(backend, tok, problems, [10, 100], 0, QWEN3, 8, eos_ids(tok, lm.config))
    by = {(r["problem_id"], r["budget"]): r for r in rows}
    natural = by["short", 10]
    assert not natural["hit_budget"] and natural["thinking_tokens"] == 5
    assert natural["full_text"] == "<think>\n" + "a" * 5 + "</think>" + "\\boxed{7}"
    cut = by["long", 10]
    assert cut["hit_budget"] and cut["thinking_tokens"] == 10
    assert cut["full_text"] == (
        "<think>\n" + "a" * 10 + "\n\nConsidering the limited time by the user, I have to give the solution based on "
        "the thinking directly now.\n</think>\n\n\\boxed{7}"
    )
    assert not by["long", 100]["hit_budget"]
    verdicts = grade([(r["full_text"], "7") for r in rows], workers=1, marker=QWEN3.answer_marker)
    assert [v for _, v in verdicts] == ["correct"] * 4


def test_qwen3_delimiters_on_a_real_model(demo):
    rows = _sweep(demo, [4, 16], 1.0, n=3, delims=QWEN3)
    for r in rows:
        assert r["full_text"].startswith("<think>\n" + r["thinking_text"])
        assert r["thinking_tokens"] <= r["budget"]
        if r["hit_budget"]:
            assert "Considering the limited time by the user" in r["full_text"]
        assert "<|im_start|>answer" not in r["full_text"][len("<think>\n") + len(r["thinking_text"]) :]


# ---- continuous batching -------------------------------------------------------------------------------------------
def test_waiting_problems_join_a_running_batch(demo, monkeypatch):
    merges = []
    real = backends_mod._Batch.merge

    def counting(self, other):
        merges.append(other.attn.shape[0])
        return real(self, other)

    monkeypatch.setattr(backends_mod._Batch, "merge", counting)
    joined = _sweep(demo, [8, 32, 128], 1.0, n=10, batch_size=4)
    assert merges, "no problem joined a running batch"
    monkeypatch.setattr(backends_mod._Batch, "merge", real)
    assert joined == _sweep(demo, [8, 32, 128], 1.0, n=10, batch_size=10)


# ---- vLLM adapter ----------------------------------------------------------------------------------------------------
class FakeLLM:
    """``vllm.LLM.generate``'s signature and output shape. A seeded request's token at step t depends only on its
    seed, t and the previous token (as a seeded vLLM request depends only on its own generator), so capping
    ``max_tokens`` gives a prefix; matched stop ids stay in ``token_ids`` as vLLM keeps them.

    As vLLM 0.33: its default model runner (V2) fails on more than 1024 ``allowed_token_ids`` or ``logit_bias``
    entries per request (v1/worker/gpu/sample/logit_bias.py); tokens outside ``allowed_token_ids`` or with a -inf
    bias are never sampled. With ``max_model_len`` it rejects a prompt that fills the context and ends a request
    where the context ends (v1/engine/input_processor.py, v1/core/sched/utils.py)."""

    def __init__(self, vocab, max_model_len=None):
        self.vocab, self.calls, self.max_model_len = vocab, [], max_model_len

    def generate(self, prompts, sampling_params, use_tqdm=True):
        import math
        import random

        self.calls.append(sampling_params)
        outs = []
        for prompt in prompts:  # the whole call fails, before any request runs
            n = len(prompt["prompt_token_ids"])
            if self.max_model_len is not None and n >= self.max_model_len:
                raise ValueError(f"The decoder prompt (length {n}) is longer than the maximum model length")
        for prompt, sp in zip(prompts, sampling_params, strict=True):
            allowed = getattr(sp, "allowed_token_ids", None)
            bias = getattr(sp, "logit_bias", None) or {}
            for name, n in (("allowed token IDs", len(allowed or ())), ("logit bias tokens", len(bias))):
                if n > 1024:
                    raise ValueError(f"Too many {name}: {n}. The max size is 1024.")
            banned = {t for t, b in bias.items() if b == -math.inf}
            allowed = set(allowed) if allowed else None
            rng = random.Random(f"{sp.seed}/{prompt['prompt_token_ids'][-1]}")
            ids, reason = [], "length"
            while len(ids) < sp.max_tokens:
                t = rng.randrange(self.vocab)
                while t in banned or (allowed is not None and t not in allowed):
                    t = rng.randrange(self.vocab)
                ids.append(t)
                if t in sp.stop_token_ids:
                    reason = "stop"
                    break
                if self.max_model_len is not None and len(prompt["prompt_token_ids"]) + len(ids) >= self.max_model_len:
                    break
            outs.append(SimpleNamespace(outputs=[SimpleNamespace(token_ids=ids, finish_reason=reason)]))
        return outs


@pytest.fixture
def fake_vllm(monkeypatch):
    class SamplingParams(SimpleNamespace):
        pass

    monkeypatch.setitem(sys.modules, "vllm", SimpleNamespace(SamplingParams=SamplingParams))


def test_vllm_adapter_budget_sweep_against_a_fake_engine(demo, fake_vllm):
    from prunetts.generation.vllm_backend import VLLMBackend

    tok, lm = demo
    # a small vocabulary with the stop token in it so that some traces stop early
    stop = tok.convert_tokens_to_ids("<|im_start|>")
    engine = FakeLLM(vocab=stop + 1)
    eos = eos_ids(tok, lm.config)
    problems = _problems(tok, 12)

    def run(budgets, **kw):
        backend = VLLMBackend(engine, Sampling(0.6, 0.95, 20), n_valid=len(tok), vocab_size=lm.config.vocab_size)
        rows = budget_sweep(backend, tok, problems, budgets, 3, S1, 6, eos, **kw)
        return [without_timings(r) for r in rows]

    budgets = [4, 16, 64, 512]
    shared = run(budgets)
    assert any(not r["hit_budget"] for r in shared) and any(r["hit_budget"] for r in shared)
    by = {(r["problem_id"], r["budget"]): r for r in shared}
    for b in budgets:
        for r in run([b]):
            assert by[r["problem_id"], b] == r
    params = engine.calls[0]
    assert all(p.top_k == 20 and p.top_p == 0.95 and p.temperature == 0.6 for p in params)
    assert len({p.seed for p in params}) == len(problems)  # one seed per problem and phase
    assert all(stop in p.stop_token_ids and p.skip_special_tokens is False for p in params)
    for r in shared:  # the stop token never leaks into the thinking
        assert "<|im_start|>" not in r["thinking_text"]
    waited = run(budgets, num_ignore=1)
    assert any(r["waits"] == 1 for r in waited)


def test_vllm_never_samples_the_padded_vocab_and_stays_within_the_v2_runners_limits(fake_vllm):
    """Qwen2.5 has embeddings for 152064 ids, its tokenizer 151665: the 399 others must never be sampled, and the
    request must pass vLLM 0.33's default model runner, which takes at most 1024 allowed ids (an allow-list of the
    151665 valid ones fails the engine)."""
    from prunetts.generation.backends import Request
    from prunetts.generation.sampling import Stream
    from prunetts.generation.vllm_backend import VLLMBackend

    n_valid, vocab = 151665, 152064
    engine = FakeLLM(vocab=vocab)
    backend = VLLMBackend(engine, Sampling(1.0), n_valid=n_valid, vocab_size=vocab)
    res = backend.generate([Request([1], 1000, frozenset(), Stream(s, 1000)) for s in range(3)])
    assert sum(len(r.tokens) for r in res) == 3000 and all(t < n_valid for r in res for t in r.tokens)


def test_vllm_refuses_more_padded_ids_than_its_default_runner_takes_before_loading_the_model(
    demo_model_dir, fake_vllm, monkeypatch
):
    """102400 embeddings and a tokenizer of 100015 (DeepSeek-V2-Lite): 2385 ids to ban, more logit_bias entries than
    vLLM 0.33's default model runner (V2) takes a request (v1/worker/gpu/sample/logit_bias.py, add_request), which
    would fail the engine at the first request after loading the model. One line before the engine loads instead;
    with VLLM_USE_V2_MODEL_RUNNER=0 (its V1 runner, v1/sample/logits_processor/builtin.py, has no limit) it runs."""
    from prunetts.generation import run, vllm_backend
    from prunetts.generation.backends import Request
    from prunetts.generation.sampling import Stream
    from prunetts.generation.vllm_backend import VLLMBackend
    from prunetts.models import ModelError, load_config

    monkeypatch.delenv("VLLM_USE_V2_MODEL_RUNNER", raising=False)
    n_valid, vocab = 100015, 102400
    with pytest.raises(ModelError, match=r"2385 .*VLLM_USE_V2_MODEL_RUNNER=0"):
        VLLMBackend(FakeLLM(vocab=vocab), Sampling(1.0), n_valid=n_valid, vocab_size=vocab)

    tok = load_tokenizer(str(demo_model_dir))
    config = load_config(str(demo_model_dir), False)
    config.vocab_size = len(tok) + 1025
    monkeypatch.setattr(run, "load_config", lambda *args: config)

    def load_engine(*args):
        raise AssertionError("the model was loaded")

    monkeypatch.setattr(vllm_backend, "load_engine", load_engine)
    generation = {"backend": "vllm", "temperature": 0.6}
    with pytest.raises(ModelError, match=r"1025 "):
        run.make_backend(str(demo_model_dir), tok, generation, {})

    monkeypatch.setenv("VLLM_USE_V2_MODEL_RUNNER", "0")
    sent = []

    class V1Runner:  # any number of logit_bias entries
        def generate(self, prompts, sampling_params, use_tqdm=True):
            sent.extend(sampling_params)
            return [SimpleNamespace(outputs=[SimpleNamespace(token_ids=[5], finish_reason="length")]) for _ in prompts]

    backend = VLLMBackend(V1Runner(), Sampling(1.0), n_valid=n_valid, vocab_size=vocab)
    backend.generate([Request([1], 1, frozenset(), Stream(1, 1))])
    assert len(sent[0].logit_bias) == 2385 and min(sent[0].logit_bias) == n_valid


def test_vllm_requests_stay_inside_the_context(fake_vllm):
    from prunetts.generation.backends import Request
    from prunetts.generation.sampling import Stream
    from prunetts.generation.vllm_backend import VLLMBackend

    engine = FakeLLM(vocab=50)
    backend = VLLMBackend(engine, Sampling(1.0), max_model_len=10)
    res = backend.generate([Request([1] * 7, 100, frozenset({999}), Stream(1, 100))])
    assert engine.calls[0][0].max_tokens == 3 and len(res[0].tokens) == 3 and not res[0].stopped


def test_vllm_gets_no_request_whose_context_fills_the_model_length(demo, fake_vllm):
    """vLLM rejects a prompt of max_model_len tokens or more, and with it the whole generate call. A thinking phase
    the context cut leaves answer contexts (thinking + closing delimiter) past it: those answers are empty."""
    from prunetts.generation.backends import Request
    from prunetts.generation.sampling import Stream
    from prunetts.generation.vllm_backend import VLLMBackend

    engine = FakeLLM(vocab=50, max_model_len=10)
    backend = VLLMBackend(engine, Sampling(1.0), max_model_len=10)
    reqs = [Request([1] * n, 5, frozenset({999}), Stream(n, 5)) for n in (7, 10, 12)]
    assert [(len(r.tokens), r.stopped) for r in backend.generate(reqs)] == [(3, False), (0, False), (0, False)]
    assert len(engine.calls[-1]) == 1

    tok, lm = demo
    problems = _problems(tok, 4)
    start = len(tok(S1.think_start, add_special_tokens=False)["input_ids"])
    limit = max(len(p.prompt_ids) for p in problems) + start + 8
    engine = FakeLLM(vocab=50, max_model_len=limit)
    backend = VLLMBackend(engine, Sampling(1.0), max_model_len=limit)
    rows = budget_sweep(backend, tok, problems, [4, 64], 3, S1, 6, eos_ids(tok, lm.config), context_limit=limit)
    assert any(r["budget"] == 64 and r["answer_tokens"] == 0 for r in rows)


def test_vllm_stop_token_at_the_length_limit_is_a_stop(fake_vllm):
    """A stop id sampled as the last allowed token is a stop, dropped from the tokens, as in the harness (stop strings)
    and the transformers backend: vLLM 0.33 checks stop ids before the length limit and ends it as "stop"
    (v1/core/sched/utils.py, check_stop); an engine that checks the length first would end it as "length"."""
    from prunetts.generation.backends import Request
    from prunetts.generation.sampling import Stream
    from prunetts.generation.vllm_backend import VLLMBackend

    class Scripted:
        def generate(self, prompts, sampling_params, use_tqdm=True):
            ends = {1: ([5, 6, 99], "length"), 2: ([5, 6, 7], "length"), 3: ([5, 99], "stop")}
            return [
                SimpleNamespace(outputs=[SimpleNamespace(token_ids=ends[p["prompt_token_ids"][0]][0], finish_reason=r)])
                for p in prompts
                for r in [ends[p["prompt_token_ids"][0]][1]]
            ]

    reqs = [Request([k], 3, frozenset({99}), Stream(k, 3)) for k in (1, 2, 3)]
    got = [(r.tokens, r.stopped) for r in VLLMBackend(Scripted(), Sampling(1.0)).generate(reqs)]
    assert got == [([5, 6], True), ([5, 6, 7], False), ([5], True)]


def test_vllm_missing_gives_one_clear_line(monkeypatch):
    from prunetts.config import ConfigError
    from prunetts.generation.vllm_backend import load_engine

    monkeypatch.setitem(sys.modules, "vllm", None)
    with pytest.raises(ConfigError, match=r"pip install -e '\.\[gpu\]'"):
        load_engine("x", "auto", False, {})


def test_a_misspelt_vllm_option_gives_one_line_naming_generation_vllm(monkeypatch):
    """vllm.LLM hands the keywords it does not know to EngineArgs, which rejects them with a TypeError."""
    from prunetts.config import ConfigError
    from prunetts.generation.vllm_backend import load_engine

    def LLM(model, dtype, trust_remote_code, enable_prefix_caching, seed, load_format, gpu_memory_utilization=0.9):  # noqa: N802
        assert load_format == "safetensors"  # vLLM's own default, auto, falls back to pickled .bin weights
        return f"engine in {dtype}"

    monkeypatch.setitem(sys.modules, "vllm", SimpleNamespace(LLM=LLM))
    # dtype auto is bf16 as on every GPU path (vLLM's own auto would run an fp16/fp32 checkpoint in fp16)
    assert load_engine("x", "auto", False, {"gpu_memory_utilization": 0.8}) == "engine in bfloat16"
    assert load_engine("x", "float16", False, {}) == "engine in float16"
    with pytest.raises(ConfigError, match=r"^generation\.vllm: .*gpu_memory_utilisation.*; use vllm\.EngineArgs"):
        load_engine("x", "auto", False, {"gpu_memory_utilisation": 0.8})


# ---- journal: kill -9 and resume -------------------------------------------------------------------------------------
GEN = dict(temperature=1.0, max_gen_toks=12, batch_size=4, dtype="float32", device="cpu")


def _job_cmd(model_dir, bench, out, generation):
    code = (
        "import logging, sys; logging.basicConfig(level=logging.INFO);"
        "from prunetts import jobs;"
        f"jobs.generate({str(model_dir)!r}, {str(bench)!r}, {str(out)!r}, model='demo', variant='dense', "
        f"bench='demo', seed=11, budgets=[16, 64, 256], generation={generation!r}, "
        "model_cfg={'delimiters': 's1'}, threads=1, progress=False)"
    )
    return [sys.executable, "-c", code]


@pytest.fixture(scope="module")
def bench_parquet(tmp_path_factory):
    from prunetts import jobs

    out = tmp_path_factory.mktemp("bench") / "bench.parquet"
    jobs.prepare_benchmark(str(out), bench="demo", options={"limit": 40})
    return out


def _table(path):
    t = pq.read_table(path)
    return t.drop_columns(["think_seconds", "answer_seconds"])


def test_kill_and_resume_gives_the_uninterrupted_parquet(demo_model_dir, bench_parquet, tmp_path):
    from prunetts.generation.run import journal_path

    whole = tmp_path / "whole.parquet"
    subprocess.run(_job_cmd(demo_model_dir, bench_parquet, whole, GEN), check=True, capture_output=True)
    assert len(open(journal_path(str(whole))).read().splitlines()) == 1 + 40, "the journal stays, complete"

    out = tmp_path / "resumed.parquet"
    journal = journal_path(str(out))
    proc = subprocess.Popen(_job_cmd(demo_model_dir, bench_parquet, out, GEN), stderr=subprocess.PIPE)
    deadline = time.time() + 300
    while time.time() < deadline and proc.poll() is None:
        if os.path.exists(journal) and len(open(journal).read().splitlines()) >= 1 + 6:
            break
        time.sleep(0.02)
    assert proc.poll() is None, "the job finished before it could be killed"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL and not out.exists()
    done_before = len(open(journal).read().splitlines()) - 1
    assert 6 <= done_before < 40

    res = subprocess.run(_job_cmd(demo_model_dir, bench_parquet, out, GEN), check=True, capture_output=True, text=True)
    assert f"resuming: {done_before} of 40 problems already done" in res.stderr
    resumed = res.stderr
    assert _table(out).equals(_table(whole))

    # a finished job's Parquet deleted (as Snakemake deletes the outputs of every job of a failed group): the rerun
    # rewrites it from the journal without loading the model
    os.remove(out)
    res = subprocess.run(_job_cmd(demo_model_dir, bench_parquet, out, GEN), check=True, capture_output=True, text=True)
    assert "every problem is in the journal; writing the Parquet without loading the model" in res.stderr
    assert " tok/s)" in resumed and " tok/s)" not in res.stderr  # the decoding summary of a loaded backend
    assert _table(out).equals(_table(whole))

    # the run settings (batch size; vLLM's memory share, lowered after an out-of-memory error) are not in the
    # journal's fingerprint (config.generation_trigger): the journal still serves
    os.remove(out)
    other = {**GEN, "batch_size": 8, "vllm": {"gpu_memory_utilization": 0.5}}
    cmd = _job_cmd(demo_model_dir, bench_parquet, out, other)
    res = subprocess.run(cmd, check=True, capture_output=True, text=True)
    assert "every problem is in the journal; writing the Parquet without loading the model" in res.stderr
    assert _table(out).equals(_table(whole))


def test_journal_ignores_a_torn_line_and_sets_aside_other_inputs(tmp_path):
    from prunetts.generation.budget_forcing import Cut
    from prunetts.generation.journal import Journal
    from prunetts.generation.sweep import Outcome

    path = tmp_path / "g.parquet.journal.jsonl"
    j = Journal(path, {"seed": 1})
    o = Outcome([5, 6], True, [1], {Cut(2, False): [9]}, 0.5, {Cut(2, False): 0.25}, {Cut(2, False): True})
    j.record("p1", o)
    j.close()
    with open(path, "a") as f:
        f.write('{"problem_id": "p2", "thinki')  # killed mid-write
    again = Journal(path, {"seed": 1})
    assert list(again.outcomes) == ["p1"] and again.outcomes["p1"] == o
    again.record("p3", o)
    again.close()
    assert list(Journal(path, {"seed": 1}).outcomes) == ["p1", "p3"]
    other = Journal(path, {"seed": 2})
    assert other.outcomes == {} and path.with_name(path.name + ".stale").exists()


def test_journal_round_trips_every_field_and_fsyncs_each_problem(tmp_path, monkeypatch):
    """An answer cut at its cap (answer_stopped False) stays False after a resume (the Parquet's answer_stopped
    column), and every recorded problem is fsynced before record returns (a power cut keeps it)."""
    import os

    from prunetts.generation.budget_forcing import Cut
    from prunetts.generation.journal import Journal
    from prunetts.generation.sweep import Outcome

    synced = []
    real = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: (synced.append(fd), real(fd))[1])
    path = tmp_path / "g.parquet.journal.jsonl"
    j = Journal(path, {"seed": 1})
    a, b = Cut(2, True), Cut(4, False)
    o = Outcome([5, 6, 7, 8], False, [2], {a: [9], b: []}, 0.5, {a: 0.25, b: 0.5}, {a: False, b: True})
    j.record("p1", o)
    assert len(synced) == 1
    j.record("p2", Outcome([1], True, [], {Cut(1, False): [3]}, 0.1, {}, {Cut(1, False): False}))
    assert len(synced) == 2
    j.close()
    again = Journal(path, {"seed": 1}).outcomes
    assert again["p1"] == o and again["p2"].answer_stopped == {Cut(1, False): False}


def test_reopening_a_journal_rewrites_it_durably(tmp_path, monkeypatch):
    """The rewrite on reopening (without a torn line) is fsynced before its rename and the rename after it: a power
    cut leaves the old journal or the new one, never an empty file under its name, which would start the job over."""
    import os
    from pathlib import Path

    from prunetts.generation.budget_forcing import Cut
    from prunetts.generation.journal import Journal
    from prunetts.generation.sweep import Outcome

    path = tmp_path / "g.parquet.journal.jsonl"
    j = Journal(path, {"seed": 1})
    j.record("p1", Outcome([5, 6], True, [], {Cut(2, False): [9]}, 0.5, {}, {Cut(2, False): True}))
    j.close()
    events = []
    real_fsync, real_replace = os.fsync, Path.replace
    monkeypatch.setattr(
        os, "fsync", lambda fd: (events.append(("fsync", os.readlink(f"/proc/self/fd/{fd}"))), real_fsync(fd))[1]
    )
    monkeypatch.setattr(
        Path, "replace", lambda self, target: (events.append(("replace", self.name)), real_replace(self, target))[1]
    )
    again = Journal(path, {"seed": 1})
    assert list(again.outcomes) == ["p1"]
    assert events == [
        ("fsync", str(path.with_name(path.name + ".tmp"))),
        ("replace", path.name + ".tmp"),
        ("fsync", str(tmp_path)),
    ]


_HOLDER = """
import sys, time
from prunetts.generation.budget_forcing import Cut
from prunetts.generation.journal import Journal
from prunetts.generation.sweep import Outcome
j = Journal(sys.argv[1], {"seed": 1})
j.record("p1", Outcome([5, 6], True, [], {Cut(2, False): [9]}, 0.5, {}, {Cut(2, False): True}))
print("ready", flush=True)
time.sleep(120)
"""


def test_a_second_job_on_a_journal_waits_for_the_first_then_goes_on_from_it(tmp_path, caplog):
    """A Snakemake head killed and rerun while its Slurm jobs still run submits each generation job again: the
    second job waits on the journal's lock instead of generating the same samples, and goes on from what the first
    wrote once the first ends, here by SIGKILL (the kernel drops the lock with its holder)."""
    import subprocess
    import sys
    import threading

    from prunetts.generation.journal import Journal

    path = tmp_path / "g.parquet.journal.jsonl"
    first = subprocess.Popen([sys.executable, "-c", _HOLDER, str(path)], stdout=subprocess.PIPE, text=True)
    try:
        assert first.stdout.readline().strip() == "ready"
        opened: list = []
        second = threading.Thread(target=lambda: opened.append(Journal(path, {"seed": 1})))
        with caplog.at_level("INFO", logger="prunetts.generation.journal"):
            second.start()
            second.join(1.5)
            assert second.is_alive() and not opened, "the second job did not wait for the first"
            assert f"pid {first.pid}" in caplog.text and "waiting for it to end" in caplog.text
            first.kill()
            second.join(30)
        assert opened and list(opened[0].outcomes) == ["p1"]
        opened[0].close()
    finally:
        first.kill()
        first.wait()


def test_journal_without_posix_locks_runs_unlocked(tmp_path, monkeypatch, caplog):
    """A file system without POSIX locks (ENOLCK, e.g. some network mounts): one warning, and the job goes on."""
    import errno
    import fcntl

    from prunetts.generation.journal import Journal

    def no_locks(*_):
        raise OSError(errno.ENOLCK, "No locks available")

    monkeypatch.setattr(fcntl, "lockf", no_locks)
    with caplog.at_level("WARNING", logger="prunetts.generation.journal"):
        j = Journal(tmp_path / "g.parquet.journal.jsonl", {"seed": 1})
    assert "no lock" in caplog.text and j.outcomes == {}
    j.close()


def test_a_rewritten_checkpoint_changes_the_journal_fingerprint(tmp_path):
    """A checkpoint pruned again into the same directory has the same file sizes: the modification times (and the
    config.json) must still change the fingerprint, else the rerun resumes the old weights' samples."""
    import os

    from prunetts.generation.journal import checkpoint_fingerprint

    (tmp_path / "model.safetensors").write_bytes(b"a" * 64)
    (tmp_path / "config.json").write_text('{"a": 1}')
    (tmp_path / "README.md").write_text("card")
    before = checkpoint_fingerprint(str(tmp_path))
    assert [f[0] for f in before["files"]] == ["config.json", "model.safetensors"]
    (tmp_path / "model.safetensors").write_bytes(b"b" * 64)  # same size, new weights
    st = (tmp_path / "model.safetensors").stat()
    os.utime(tmp_path / "model.safetensors", ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    assert checkpoint_fingerprint(str(tmp_path)) != before
    assert checkpoint_fingerprint("org/name") == {"model": "org/name"}


def test_a_new_system_prompt_does_not_resume_the_old_prompts_samples(
    demo_model_dir, bench_parquet, tmp_path, monkeypatch
):
    """The journal's fingerprint holds the prompts' token ids: a job killed under one system prompt (or chat template,
    or tokenizer) and rerun under another starts over instead of mixing the two prompts' samples."""
    from prunetts import jobs
    from prunetts.generation import run
    from prunetts.generation.journal import Journal

    class Killed(Exception):
        pass

    class DiesAfterTwo(Journal):  # a job killed after two more problems reached the journal
        written = 0

        def record(self, problem_id, outcome):
            super().record(problem_id, outcome)
            self.written += 1
            if self.written == 2:
                self.close()
                raise Killed

    out = tmp_path / "g.parquet"
    journal = Path(run.journal_path(str(out)))
    stale = journal.with_name(journal.name + ".stale")

    def job(system_prompt):
        jobs.generate(
            str(demo_model_dir),
            str(bench_parquet),
            str(out),
            model="demo",
            variant="dense",
            bench="demo",
            seed=11,
            budgets=[16],
            generation=GEN,
            threads=1,
            progress=False,
            model_cfg={"delimiters": "s1", "system_prompt": system_prompt},
        )

    monkeypatch.setattr(run, "Journal", DiesAfterTwo)
    with pytest.raises(Killed):
        job("You are a careful calculator.")
    assert len(journal.read_text().splitlines()) == 1 + 2
    with pytest.raises(Killed):
        job("You are a careful calculator.")  # same inputs: resumes, so two more problems make four
    assert len(journal.read_text().splitlines()) == 1 + 4 and not stale.exists()
    with pytest.raises(Killed):
        job("Think step by step.")  # another system prompt: the old samples are set aside
    assert stale.exists() and len(journal.read_text().splitlines()) == 1 + 2


# ---- against transformers' own generate ------------------------------------------------------------------------------
def test_greedy_backend_equals_model_generate_for_every_family(tiny_model_dir):
    """Our decode loop (left padding, position ids, rows leaving the batch, the preallocated KV layers) against
    ``model.generate`` one prompt at a time, for Qwen2 (q/k/v biases), Qwen3 and Llama."""
    import torch

    from prunetts.generation.backends import Request
    from prunetts.generation.sampling import Stream

    tok = load_tokenizer(str(tiny_model_dir))
    lm = load_model(str(tiny_model_dir), dtype="float32", device="cpu")
    backends_mod._GROW, grow = 3, backends_mod._GROW  # force many capacity growths
    try:
        be = TransformersBackend(lm, tok, Sampling(0.0), batch_size=3, progress=False)
        prompts = [[5, 6, 7], [8] * 11, [9, 10], [11, 12, 13, 14, 15, 16], [17]]
        stop = frozenset({tok.convert_tokens_to_ids("<|im_start|>")})
        got = be.generate([Request(p, 9 + i, stop, Stream(0, 32)) for i, p in enumerate(prompts)])
    finally:
        backends_mod._GROW = grow
    for i, (p, res) in enumerate(zip(prompts, got, strict=True)):
        ref = lm.generate(torch.tensor([p]), max_new_tokens=9 + i, do_sample=False, eos_token_id=list(stop))
        ref = ref[0, len(p) :].tolist()
        if ref and ref[-1] in stop:
            assert res.stopped and res.tokens == ref[:-1]
        else:
            assert not res.stopped and res.tokens == ref


# ---- a model with more embeddings than the tokenizer has tokens ----------------------------------------------------
@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
def test_padded_vocab_is_never_sampled(tmp_path, dtype):
    """Qwen2.5 checkpoints have 152064 embeddings for a 151665-token tokenizer. The ids beyond the tokenizer are
    masked out of every sampling step, in fp32 too (there the logits are the inference tensor the model returned and
    cannot be masked in place)."""
    import torch
    from transformers import AutoModelForCausalLM

    from prunetts.demo.tokenizer import build_tokenizer
    from tests.conftest import tiny_config

    tok = build_tokenizer()
    torch.manual_seed(0)
    cfg = tiny_config("qwen2", len(tok) + 37, tie_word_embeddings=True)
    cfg.eos_token_id, cfg.pad_token_id = tok.eos_token_id, tok.pad_token_id
    lm = AutoModelForCausalLM.from_config(cfg)
    lm.save_pretrained(tmp_path)
    tok.save_pretrained(tmp_path)
    tok, lm = load_tokenizer(str(tmp_path)), load_model(str(tmp_path), dtype=dtype, device="cpu")
    head = torch.nn.Linear(lm.lm_head.in_features, lm.lm_head.out_features, bias=True, dtype=lm.lm_head.weight.dtype)
    with torch.no_grad():
        head.weight.copy_(lm.lm_head.weight)
        head.bias.zero_()
        head.bias[len(tok) :] = 30.0  # unmasked, the padded ids would win every step
    lm.lm_head = head
    backend = TransformersBackend(lm, tok, Sampling(1.0), batch_size=2, progress=False)
    sampled = []
    sample = backend._sample
    backend._sample = lambda batch, u: sampled.extend(out := sample(batch, u)) or out
    rows = budget_sweep(backend, tok, _problems(tok, 3), [8, 16], 7, S1, 4, eos_ids(tok, lm.config))
    assert len(rows) == 6 and len(sampled) >= 3 * 16
    assert max(sampled) < len(tok)


# ---- sliding-window attention ----------------------------------------------------------------------------------------
# Qwen2/Qwen3 configs can make some layers sliding-window (max_window_layers, or layer_types). Their KV cache layers
# stay transformers' DynamicSlidingWindowLayer (the window's keys only); the windows here (4, 5 tokens) are far
# shorter than the prompts and generations, and the prompts differ in length, so the left-padded rows see the window
# move over their padding.
SLIDING = {
    "qwen2-upper-layers": ("qwen2", 4, dict(max_window_layers=1)),
    "qwen3-layer-types": ("qwen3", 5, dict(layer_types=["sliding_attention", "full_attention", "sliding_attention"])),
}


@pytest.fixture(scope="module", params=list(SLIDING))
def sliding(request, tmp_path_factory):
    """A tiny random model with sliding-window layers, its full-attention twin (same weights), and the window."""
    from transformers import AutoModelForCausalLM

    from tests.conftest import build_tiny

    family, window, extra = SLIDING[request.param]
    path = build_tiny(
        family, tmp_path_factory.mktemp(request.param), use_sliding_window=True, sliding_window=window, **extra
    )
    tok, lm = load_tokenizer(str(path)), load_model(str(path), dtype="float32", device="cpu")
    assert "sliding_attention" in lm.config.layer_types and "full_attention" in lm.config.layer_types
    config = lm.config.__class__(**{**lm.config.to_dict(), "layer_types": None, "use_sliding_window": False})
    full = AutoModelForCausalLM.from_config(config).eval()
    full.load_state_dict(lm.state_dict())
    return tok, lm, full, window


def _recompute(lm, context, n, stream, temperature, stop):
    """Ground truth: every step a forward pass over the whole sequence, no KV cache, no padding."""
    import torch

    from prunetts.generation.sampling import sample_next

    ids, out = list(context), []
    for t in range(n):
        with torch.inference_mode():
            logits = lm(input_ids=torch.tensor([ids]), use_cache=False).logits[:, -1, :].float()
        tok = int(sample_next(logits, torch.tensor([stream[t]], dtype=torch.float64), temperature)[0])
        if tok in stop:
            return out, True
        out.append(tok)
        ids.append(tok)
    return out, False


@pytest.mark.parametrize("temperature", [0.0, 1.0])
def test_sliding_window_batches_decode_as_a_full_recompute(sliding, temperature):
    """Left-padded batches of prompts of different lengths, rows leaving the batch: each request's tokens are those of
    a cache-free recompute of that request alone, and differ from the full-attention twin's (the window bites)."""
    from prunetts.generation.backends import Request, _Batch
    from prunetts.generation.sampling import Stream

    tok, lm, full, window = sliding
    prompts = [[5, 6, 7], [8] * 11, [9, 10], list(range(11, 17)), [17], list(range(20, 33))]
    stop = frozenset({tok.convert_tokens_to_ids("<|im_start|>")})
    reqs = [Request(p, 10 + i, stop, Stream(100 + i, 64)) for i, p in enumerate(prompts)]
    got = TransformersBackend(lm, tok, Sampling(temperature), batch_size=4, progress=False).generate(reqs)
    truth = [_recompute(lm, r.context, r.max_new, r.stream, temperature, stop) for r in reqs]
    assert [(g.tokens, g.stopped) for g in got] == truth
    assert truth != [_recompute(full, r.context, r.max_new, r.stream, temperature, stop) for r in reqs]
    # the window's layers keep only the window (memory bounded by it); a batch holding them never takes joining rows
    batch = _Batch(TransformersBackend(lm, tok, Sampling(temperature), progress=False), prompts)
    kinds = ["sliding" if layer.is_sliding else "growing" for layer in batch.cache.layers]
    assert kinds == ["sliding" if t == "sliding_attention" else "growing" for t in lm.config.layer_types]
    assert all(layer.keys.shape[-2] < window for layer in batch.cache.layers if layer.is_sliding)
    assert not batch.can_merge()


def test_sliding_window_sweep_forks_equal_two_phase_and_single_budgets(sliding):
    """The forking sweep (cache rows duplicated at each budget; continuous batching refused, as a window-sized cache
    cannot be left-padded to the running batch's width) against the two-phase sweep and one sweep per budget. A bias
    towards the thinking stop token makes rows stop at scattered lengths, so the batch shrinks while problems wait."""
    import copy

    tok, lm, _, _ = sliding
    lm = _stop_biased(copy.deepcopy(lm), tok, 2.0)  # the fixture's model stays unbiased
    budgets = [4, 16, 48]
    fork = _sweep((tok, lm), budgets, 1.0, n=8, batch_size=4, method="fork")
    thought = [r["thinking_tokens"] for r in fork if r["budget"] == 48]
    assert len(set(thought)) >= 4 and max(thought) >= 16  # scattered stops; forks at 4 and at 16
    assert fork == _sweep((tok, lm), budgets, 1.0, n=8, batch_size=8, method="fork")
    assert fork == _sweep((tok, lm), budgets, 1.0, n=8, batch_size=8, method="two_phase")
    shared = {(r["problem_id"], r["budget"]): r for r in fork}
    for b in budgets:
        assert all(shared[r["problem_id"], b] == r for r in _sweep((tok, lm), [b], 1.0, n=8, batch_size=8))


@pytest.mark.parametrize(
    "option, engine_len, want",
    [(-1, 77, 77), (100, 100, 100), (None, 77, 77), (100, None, 100), (-1, None, 512), (None, None, 512)],
)
def test_vllm_answers_stop_at_the_engines_else_the_options_else_the_configs_context(
    demo_model_dir, fake_vllm, monkeypatch, option, engine_len, want
):
    """The context the engine runs with (the option, the length it derived from the config as in the paper's
    harness, or for max_model_len: -1 the length vLLM 0.33 fitted into GPU memory), else a positive
    generation.vllm.max_model_len, else the config's max_position_embeddings (the demo model's 512)."""
    from prunetts.generation import run, vllm_backend
    from prunetts.models import load_tokenizer

    engine = SimpleNamespace(llm_engine=SimpleNamespace(model_config=SimpleNamespace(max_model_len=engine_len)))
    monkeypatch.setattr(vllm_backend, "load_engine", lambda *args: engine)
    vllm = {} if option is None else {"max_model_len": option}
    generation = {"backend": "vllm", "temperature": 0.6, "vllm": vllm}
    backend, _, limit = run.make_backend(str(demo_model_dir), load_tokenizer(str(demo_model_dir)), generation, {})
    assert limit == want and backend.max_model_len == want


def test_the_prompts_digest_ties_each_prompt_to_its_problem():
    """Two problems that swap prompts (a re-made benchmark) must not resume each other's journaled samples."""
    from prunetts.generation.run import prompts_digest

    a, b = Problem("a", [1, 2]), Problem("b", [3])
    assert prompts_digest([a, b]) == prompts_digest([Problem("a", [1, 2]), Problem("b", [3])])
    assert prompts_digest([a, b]) != prompts_digest([Problem("b", [1, 2]), Problem("a", [3])])
    assert prompts_digest([a, b]) != prompts_digest([b, a])


def test_the_sweep_stops_on_the_generation_configs_end_ids_too(demo_model_dir, tmp_path, monkeypatch):
    """run.generate hands the sweep the tokenizer's and config's EOS plus generation_config.json's (as vLLM)."""
    import json
    import shutil

    from prunetts import jobs
    from prunetts.generation import run
    from prunetts.models import load_config

    ckpt = shutil.copytree(demo_model_dir, tmp_path / "m")
    config = json.loads((ckpt / "generation_config.json").read_text())
    (ckpt / "generation_config.json").write_text(json.dumps({**config, "eos_token_id": [258, 65]}))
    bench = tmp_path / "bench.parquet"
    jobs.prepare_benchmark(str(bench), bench="demo", options={"limit": 2})
    seen = {}
    backend = SimpleNamespace(generated_tokens=0, decode_seconds=1.0)
    monkeypatch.setattr(run, "make_backend", lambda path, *a: (backend, load_config(path), 512))
    monkeypatch.setattr(run, "budget_sweep", lambda *a, **k: seen.setdefault("eos", a[7]) and [])
    run.generate(
        str(ckpt), str(bench), str(tmp_path / "g.parquet"), model="demo", variant="dense", bench="demo", seed=0,
        budgets=[16], generation={"temperature": 0.0, "max_gen_toks": 8, "journal": False}, model_cfg={},
        impl_version=1, progress=False,
    )  # fmt: skip
    assert {258, 65} <= seen["eos"]


def test_a_complete_journal_rewrites_the_parquet_without_loading_the_model(demo_model_dir, tmp_path, monkeypatch):
    """A lost Parquet (a group job's failure deletes it) is rewritten from the journal alone, the same rows (timings
    aside); the budgets' order in the config is not part of the fingerprint, so listing them otherwise resumes too."""
    from prunetts import artifacts, jobs
    from prunetts.generation import run

    bench, out = tmp_path / "bench.parquet", tmp_path / "g.parquet"
    jobs.prepare_benchmark(str(bench), bench="demo", options={"limit": 2})
    kw = dict(
        model="demo", variant="dense", bench="demo", seed=0, generation={"temperature": 0.6, "max_gen_toks": 8},
        model_cfg={}, impl_version=1, progress=False,
    )  # fmt: skip
    run.generate(str(demo_model_dir), str(bench), str(out), budgets=[8, 16], **kw)
    first = [without_timings(r) for r in artifacts.read("generations", out).to_pylist()]
    out.unlink()

    def no_model(*_a, **_k):
        raise AssertionError("the model was loaded although the journal holds every problem")

    monkeypatch.setattr(run, "make_backend", no_model)
    run.generate(str(demo_model_dir), str(bench), str(out), budgets=[16, 8], **kw)
    assert [without_timings(r) for r in artifacts.read("generations", out).to_pylist()] == first


def test_a_running_batch_keeps_no_column_that_every_row_pads(demo, monkeypatch):
    """Continuous batching must not let the KV cache's width grow with the batch's lifetime: each step appends a
    column for every row and joining rows are left-padded to the running width, so without trimming the columns that
    every live row masks, the width is the number of steps since the first batch started (on the paper's grid, tens
    of thousands of positions per row: KV caches of hundreds of GB)."""
    excess = []
    real = backends_mod._Batch.step

    def step(self, feed):
        real(self, feed)
        longest = int(self.attn.sum(-1).max())  # the longest live row: the width the cache needs
        excess.append(self.attn.shape[1] - longest)
        for layer in self.cache.layers:
            assert layer.keys.shape[-2] == self.attn.shape[1]

    monkeypatch.setattr(backends_mod._Batch, "step", step)
    trimmed = _sweep(demo, [8, 32], 1.0, n=10, batch_size=2)
    assert excess and max(excess) == 0, max(excess)
    monkeypatch.setattr(backends_mod._Batch, "step", real)
    assert trimmed == _sweep(demo, [8, 32], 1.0, n=10, batch_size=10)


# ---- out of device memory ----------------------------------------------------------------------------------------
def _oom_at(monkeypatch, calls: set[int] | None):
    """``_Batch.step`` raises CUDA's out-of-memory error at the given step calls (None: at every call); returns the
    list of contexts prefilled and, at each error, how many had been prefilled by then."""
    import torch

    real_init, real_step = backends_mod._Batch.__init__, backends_mod._Batch.step
    log = {"prefilled": [], "at_error": [], "steps": 0}

    def init(self, backend, contexts):
        log["prefilled"] += [tuple(c) for c in contexts]
        real_init(self, backend, contexts)

    def step(self, feed):
        log["steps"] += 1
        if calls is None or log["steps"] in calls:
            log["at_error"].append(len(log["prefilled"]))
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB\nmore detail")
        real_step(self, feed)

    monkeypatch.setattr(backends_mod._Batch, "__init__", init)
    monkeypatch.setattr(backends_mod._Batch, "step", step)
    return log


def test_out_of_device_memory_halves_the_batch_and_keeps_the_finished_problems(demo, monkeypatch, caplog):
    """A batch whose KV caches (forks included) outgrow the GPU: the problems already finished are kept, the rest run
    again at half the batch size, and the samples are those of an uninterrupted run."""
    import logging
    import re

    counted = []  # decoded tokens per run_sweep call, as the job's "N tokens in Xs" line sums them
    real_account = TransformersBackend._account
    monkeypatch.setattr(
        TransformersBackend, "_account", lambda self, t0, n: (counted.append(n), real_account(self, t0, n))
    )
    clean = _sweep(demo, [8, 32], 1.0, n=10, batch_size=4)
    (clean_tokens,) = counted
    log = _oom_at(monkeypatch, {120})  # of the 195 steps of the clean run
    with caplog.at_level(logging.WARNING, logger="prunetts.generation.sweep"):
        got = _sweep(demo, [8, 32], 1.0, n=10, batch_size=4)
    assert got == clean
    (line,) = [r.getMessage() for r in caplog.records if "out of device memory" in r.getMessage()]
    m = re.search(r"at batch size 4 with (\d+) of 10 problems finished \(CUDA out of memory\. Tried to allocate "
                  r"2\.00 GiB\); going on at batch size 2 ", line)  # fmt: skip
    assert m, line
    finished = int(m.group(1))
    assert 0 < finished < 10, "the error must come after some problems and before the last"
    # the finished problems are not generated again; those in flight at the error are, once more
    (before,) = log["at_error"]
    assert len(log["prefilled"]) == before + 10 - finished
    assert len(set(log["prefilled"])) == 10
    # the failed attempt's tokens are counted too: more than the clean run, by the in-flight rows decoded twice
    assert len(counted) == 3 and counted[1] > 0 and counted[1] + counted[2] > clean_tokens


def test_out_of_device_memory_at_batch_size_one_is_one_line(demo, monkeypatch, caplog):
    from prunetts.models import ModelError

    _oom_at(monkeypatch, None)
    with pytest.raises(ModelError) as e:
        _sweep(demo, [8, 32], 1.0, n=3, batch_size=2)
    msg = str(e.value)
    assert "\n" not in msg
    assert msg.startswith("generation: out of device memory even at batch size 1 (CUDA out of memory. Tried to ")
    assert "0 of 3 problems finished)" in msg and "backend: vllm" in msg
    assert [r.getMessage().split(" with ")[0] for r in caplog.records if "out of device" in r.getMessage()] == [
        "out of device memory at batch size 2"
    ]


def test_a_journal_line_for_a_problem_outside_the_benchmark_is_not_counted(demo_model_dir, tmp_path):
    """A journal holding every problem but one plus a line for a problem the benchmark lacks (a hand-merged journal)
    is not complete: the missing problem is generated (the model loads), not a bare AttributeError on no backend."""
    import json

    from prunetts import artifacts, jobs
    from prunetts.generation import run

    bench, whole, out = tmp_path / "bench.parquet", tmp_path / "whole.parquet", tmp_path / "g.parquet"
    jobs.prepare_benchmark(str(bench), bench="demo", options={"limit": 3})
    kw = dict(
        model="demo", variant="dense", bench="demo", seed=0, budgets=[8], model_cfg={}, impl_version=1,
        generation={"temperature": 1.0, "max_gen_toks": 8, "device": "cpu", "dtype": "float32"}, progress=False,
    )  # fmt: skip
    run.generate(str(demo_model_dir), str(bench), str(whole), **kw)
    header, *lines = Path(run.journal_path(str(whole))).read_text().splitlines()
    foreign = {**json.loads(lines[-1]), "problem_id": "not-in-this-benchmark"}
    Path(run.journal_path(str(out))).write_text("\n".join([header, *lines[:-1], json.dumps(foreign)]) + "\n")
    run.generate(str(demo_model_dir), str(bench), str(out), **kw)
    rows = [without_timings(r) for r in artifacts.read("generations", out).to_pylist()]
    assert rows == [without_timings(r) for r in artifacts.read("generations", whole).to_pylist()]


def test_a_journal_with_bytes_that_are_not_text_ignores_that_line_only(tmp_path, caplog):
    """The journal is ASCII (json.dumps); a line with other bytes (a disk error, a stray binary write) is skipped
    with a warning naming its line, as a torn line is, instead of a UnicodeDecodeError that ends the job."""
    from prunetts.generation.budget_forcing import Cut
    from prunetts.generation.journal import Journal
    from prunetts.generation.sweep import Outcome

    path = tmp_path / "g.parquet.journal.jsonl"
    j = Journal(path, {"seed": 1})
    o = Outcome([5, 6], True, [], {Cut(2, False): [9]}, 0.5, {Cut(2, False): 0.25}, {Cut(2, False): True})
    j.record("p1", o)
    j.close()
    with open(path, "ab") as f:
        f.write(b'{"problem_id": "p2", \xff\xfe\x00 garbage\n')
    with caplog.at_level("WARNING", logger="prunetts.generation.journal"):
        j = Journal(path, {"seed": 1})
    assert f"{path}: ignoring line 3, torn" in caplog.text and list(j.outcomes) == ["p1"]
    j.record("p3", o)
    j.close()
    again = Journal(path, {"seed": 1})
    assert list(again.outcomes) == ["p1", "p3"] and again.outcomes["p3"] == o
    again.close()


def test_the_checkpoints_own_code_is_in_the_journal_fingerprint_when_it_runs(demo_model_dir, tmp_path, monkeypatch):
    """With trust_remote_code the checkpoint's .py files are the model: an edited modeling file, or the switch
    itself (transformers' class for the checkpoint's), must not resume the old code's samples. Without it the .py
    files never run and leave the fingerprint (and existing journals) as they were."""
    import shutil

    from prunetts import jobs
    from prunetts.generation import run

    model, bench = tmp_path / "m", tmp_path / "bench.parquet"
    shutil.copytree(demo_model_dir, model)
    jobs.prepare_benchmark(str(bench), bench="demo", options={"limit": 2})

    class Opened(Exception):
        pass

    def fingerprint(trust: bool) -> dict:
        def capture(path, fp):
            raise Opened(fp)

        monkeypatch.setattr(run, "Journal", capture)
        with pytest.raises(Opened) as e:
            run.generate(
                str(model), str(bench), str(tmp_path / "g.parquet"), model="demo", variant="dense", bench="demo",
                seed=0, budgets=[8], generation={"temperature": 1.0, "max_gen_toks": 8}, impl_version=1,
                model_cfg={"trust_remote_code": trust}, progress=False,
            )  # fmt: skip
        return e.value.args[0]

    plain = fingerprint(False)
    (model / "modeling_demo.py").write_text("# the checkpoint's model code\n")
    assert fingerprint(False) == plain  # never run: no new fingerprint
    trusted = fingerprint(True)
    assert trusted != plain
    (model / "modeling_demo.py").write_text("# the checkpoint's model code, edited\n")
    st = (model / "modeling_demo.py").stat()
    os.utime(model / "modeling_demo.py", ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    assert fingerprint(True) != trusted
