"""s1 budget forcing: the cap, the delimiters, and the prefix-shared sweep against independent runs."""

import pytest
import torch

from prunetts.generation.backends import Sampling, TransformersBackend
from prunetts.generation.budget_forcing import DELIMITERS, Cut, closing_text, cut_for_budget
from prunetts.generation.prompts import prompt_ids
from prunetts.generation.sweep import Problem, budget_sweep, eos_ids
from prunetts.models import load_model, load_tokenizer

S1 = DELIMITERS["s1"]


def test_cut_semantics():
    # stopped by itself after 10 thinking tokens: the stop token is the 11th generated token
    assert cut_for_budget(10, True, 11).hit_budget is False
    assert cut_for_budget(10, True, 10).hit_budget is True  # the 10th token used the whole budget
    assert cut_for_budget(10, True, 10).n_tokens == 10
    assert cut_for_budget(10, True, 4).n_tokens == 4
    assert cut_for_budget(64, False, 64) == Cut(64, True)  # ran to the budget without stopping
    assert cut_for_budget(10, False, 64) == Cut(10, True)  # cut short by something else: still no natural stop
    assert cut_for_budget(64, False, 16) == Cut(16, True)
    assert cut_for_budget(10, True, 64) == Cut(10, False)


def test_closing_text():
    assert closing_text("abc", True, S1) == "\n<|im_start|>answer\nFinal Answer:"
    assert closing_text("abc\n", True, S1) == "<|im_start|>answer\nFinal Answer:"
    assert closing_text("abc\n", False, S1) == "<|im_start|>answer"


def _sweep(model_dir, budgets, temperature, seed=7, n=6, method="auto", batch_size=4):
    tok = load_tokenizer(str(model_dir))
    lm = load_model(str(model_dir), dtype="float32", device="cpu")
    backend = TransformersBackend(lm, tok, Sampling(temperature), batch_size=batch_size, progress=False)
    from prunetts.demo import task

    probs = [Problem(p.id, prompt_ids(tok, p.question)) for p in task.sample_problems("test", n)]
    rows = budget_sweep(backend, tok, probs, budgets, seed, S1, 12, eos_ids(tok, lm.config), method=method)
    return [without_timings(r) for r in rows]


def without_timings(row: dict) -> dict:
    """Timings are measurements; every other column must be reproduced exactly."""
    return {k: v for k, v in row.items() if not k.endswith("_seconds")}


@pytest.mark.parametrize("temperature", [0.0, 1.0])
def test_thinking_never_exceeds_budget_and_delimiters(demo_model_dir, temperature):
    """The trained demo model stops thinking by itself within 256 tokens and not within 8: both kinds of row."""
    budgets = [3, 8, 256]
    rows = _sweep(demo_model_dir, budgets, temperature)
    assert {r["budget"] for r in rows} == set(budgets)
    assert {r["hit_budget"] for r in rows} == {True, False}
    for r in rows:
        assert r["thinking_tokens"] <= r["budget"]
        if r["hit_budget"]:
            assert r["thinking_tokens"] == r["budget"]
            assert S1.budget_close in r["full_text"]
        else:
            assert r["thinking_tokens"] < r["budget"]  # the stop token used one generated slot
            assert "Final Answer:" not in r["full_text"][len(S1.think_start) + len(r["thinking_text"]) :]
        assert r["full_text"].startswith(S1.think_start + r["thinking_text"])


def test_demo_model_stops_by_itself_and_gets_the_plain_delimiter(demo_model_dir):
    rows = _sweep(demo_model_dir, [16, 256], 0.0, n=4)
    big = [r for r in rows if r["budget"] == 256]
    small = [r for r in rows if r["budget"] == 16]
    assert all(not r["hit_budget"] for r in big)
    assert all(r["full_text"].count("<|im_start|>answer") == 1 and "Final Answer:" not in r["full_text"] for r in big)
    assert all(r["hit_budget"] and r["thinking_tokens"] == 16 for r in small)
    assert all("\n<|im_start|>answer\nFinal Answer:" in r["full_text"] for r in small)


@pytest.mark.parametrize("temperature", [0.0, 1.0])
def test_prefix_shared_sweep_equals_independent_runs(demo_model_dir, temperature):
    budgets = [16, 48, 128]
    shared = {(r["problem_id"], r["budget"]): r for r in _sweep(demo_model_dir, budgets, temperature, n=5)}
    for b in budgets:
        for r in _sweep(demo_model_dir, [b], temperature, n=5):
            assert shared[r["problem_id"], b] == r


@pytest.mark.parametrize("temperature", [0.0, 1.0])
def test_forking_sweep_equals_two_phase_and_does_not_depend_on_the_batch(demo_model_dir, temperature):
    budgets = [16, 32, 64, 128]
    fork = _sweep(demo_model_dir, budgets, temperature, n=8, method="fork")
    assert fork == _sweep(demo_model_dir, budgets, temperature, n=8, method="two_phase")
    assert fork == _sweep(demo_model_dir, budgets, temperature, n=8, method="fork", batch_size=3)


def test_sampling_is_seeded_per_sequence():
    from prunetts.generation.sampling import sample_next, uniforms

    logits = torch.randn(3, 50, generator=torch.Generator().manual_seed(0))
    u = torch.stack([uniforms(7, f"p{i}", "think", 4)[0] for i in range(3)])
    a = sample_next(logits, u, 1.0)
    b = sample_next(logits[[2, 0, 1]], u[[2, 0, 1]], 1.0)
    assert a[[2, 0, 1]].tolist() == b.tolist()
    assert not torch.equal(uniforms(7, "p0", "think", 4), uniforms(11, "p0", "think", 4))


@pytest.mark.parametrize("top_k, top_p", [(20, 0.9), (0, 0.9), (20, 1.0), (5, 0.5)])
def test_top_k_then_top_p_keeps_what_transformers_keeps_with_its_probabilities(top_k, top_p):
    """Top-p is measured on the renormalised top-k distribution (transformers' and vLLM's order): the tokens a fine
    grid of uniforms reaches, and how often, are transformers' warped distribution."""
    from transformers.generation.logits_process import TopKLogitsWarper, TopPLogitsWarper

    from prunetts.generation.sampling import sample_next

    logits = torch.randn(3, 30, generator=torch.Generator().manual_seed(1)) * 2
    warped = logits.clone()
    if top_k:
        warped = TopKLogitsWarper(top_k)(None, warped)
    if top_p < 1.0:
        warped = TopPLogitsWarper(top_p)(None, warped)
    expected = torch.softmax(warped, -1)
    n = 20000
    u = (torch.arange(n, dtype=torch.float64) + 0.5) / n
    for row in range(3):
        tokens = sample_next(logits[row].expand(n, -1), u, 1.0, top_p=top_p, top_k=top_k)
        freq = torch.bincount(tokens, minlength=30).double() / n
        assert set(freq.nonzero().flatten().tolist()) == set(expected[row].nonzero().flatten().tolist())
        assert torch.allclose(freq, expected[row].double(), atol=2 / n)


@pytest.mark.parametrize("temperature", [0.6, 1.7])
def test_sampling_divides_the_logits_by_the_temperature(temperature):
    """The tokens a fine grid of uniforms reaches, and how often, follow softmax(logits / T) (Qwen3's recommended
    T = 0.6 sharpens, T > 1 flattens), not softmax(logits)."""
    from prunetts.generation.sampling import sample_next

    logits = torch.randn(2, 12, generator=torch.Generator().manual_seed(4)) * 2
    n = 20000
    u = (torch.arange(n, dtype=torch.float64) + 0.5) / n
    for row in range(2):
        freq = torch.bincount(sample_next(logits[row].expand(n, -1), u, temperature), minlength=12).double() / n
        assert torch.allclose(freq, torch.softmax(logits[row].double() / temperature, -1), atol=2 / n)
        assert not torch.allclose(freq, torch.softmax(logits[row].double(), -1), atol=0.01)


def test_an_empty_system_prompt_is_an_empty_system_turn_not_the_templates_default(demo_model_dir):
    tok = load_tokenizer(str(demo_model_dir))
    text = {sp: tok.decode(prompt_ids(tok, "2+2", sp)) for sp in (None, "", "Be brief.")}
    assert "system" not in text[None]  # the template's default (this template has none; Qwen2.5's is "You are Qwen")
    # the assistant turn is opened (--apply_chat_template's generation prompt): the thinking start follows it
    assert all(t.endswith("<|im_end|>\n<|im_start|>assistant\n") for t in text.values())
    assert text[""].startswith("<|im_start|>system\n<|im_end|>\n<|im_start|>user\n2+2")
    assert text["Be brief."].startswith("<|im_start|>system\nBe brief.<|im_end|>\n")


def test_a_template_that_opens_the_thinking_is_not_opened_twice(demo_model_dir):
    """QwQ's, Qwen3-Thinking-2507's and the DeepSeek-R1 distills' templates end the generation prompt with
    ``<think>\\n``: the thinking phase continues from there, with one ``<think>``, not two."""
    from prunetts.demo import task

    tok = load_tokenizer(str(demo_model_dir))
    lm = load_model(str(demo_model_dir), dtype="float32", device="cpu")
    qwen3 = DELIMITERS["qwen3"]
    contexts = []

    class Recorder(TransformersBackend):
        def run_sweep(self, plan, on_done):
            contexts.extend(it.context for it in plan.items)
            return super().run_sweep(plan, on_done)

    backend = Recorder(lm, tok, Sampling(0.0), batch_size=4, progress=False)
    questions = [p.question for p in task.sample_problems("test", 2)]
    plain = [Problem(str(i), prompt_ids(tok, q)) for i, q in enumerate(questions)]
    tok.chat_template = tok.chat_template.replace("<|im_start|>assistant\\n", "<|im_start|>assistant\\n<think>\\n")
    opened = [Problem(str(i), prompt_ids(tok, q)) for i, q in enumerate(questions)]
    assert tok.decode(opened[0].prompt_ids).endswith("assistant\n<think>\n")
    rows = {}
    for name, probs in (("plain", plain), ("opened", opened)):
        rows[name] = [
            without_timings(r) for r in budget_sweep(backend, tok, probs, [4, 8], 7, qwen3, 4, {tok.eos_token_id})
        ]
    plain_ctx, opened_ctx = contexts[:2], contexts[2:]
    assert opened_ctx == plain_ctx  # the same token ids reach the model either way
    assert all(tok.decode(c).count("<think>") == 1 for c in opened_ctx)
    assert rows["opened"] == rows["plain"]


def test_s1_delimiters_after_a_template_that_opens_qwen3_thinking_warn(demo_model_dir, caplog):
    """A thinking model's template (QwQ, Qwen3-Thinking-2507) ends with ``<think>\\n``; under ``delimiters: s1``
    ``<|im_start|>think`` follows it (the prompt is kept, as configured) and one warning names the set that fits."""
    import logging

    tok = load_tokenizer(str(demo_model_dir))
    lm = load_model(str(demo_model_dir), dtype="float32", device="cpu")
    backend = TransformersBackend(lm, tok, Sampling(0.0), batch_size=4, progress=False)
    plain = [Problem("0", prompt_ids(tok, "2+2"))]
    tok.chat_template = tok.chat_template.replace("<|im_start|>assistant\\n", "<|im_start|>assistant\\n<think>\\n")
    opened = [Problem("0", prompt_ids(tok, "2+2"))]
    for probs, warned in ((plain, False), (opened, True)):
        caplog.clear()
        with caplog.at_level(logging.WARNING, logger="prunetts.generation.sweep"):
            budget_sweep(backend, tok, probs, [4], 7, S1, 4, {tok.eos_token_id})
        found = [r.getMessage() for r in caplog.records if "already opens the thinking" in r.getMessage()]
        assert len(found) == warned, found
    assert "'<think>\\n'" in found[0] and "delimiters: qwen3 fit" in found[0]


def test_each_problem_thinks_and_answers_from_its_own_seeded_streams(demo_model_dir):
    """The plan a backend gets: per problem a thinking stream and an answer stream, seeded by (seed, problem id,
    phase), so the answer's uniforms are not the thinking's and a problem's samples do not depend on the others."""
    from prunetts.generation.sampling import stream_seed

    class Captured(Exception):
        pass

    class Recorder:
        def run_sweep(self, plan, on_done=None):
            raise Captured(plan)

    tok = load_tokenizer(str(demo_model_dir))
    probs = [Problem("a", [1, 2]), Problem("b", [3])]
    with pytest.raises(Captured) as got:
        budget_sweep(Recorder(), tok, probs, [8, 4], 5, S1, 12, {tok.eos_token_id})
    plan = got.value.args[0]
    assert plan.budgets == [4, 8]
    assert [(it.think_stream.seed, it.think_stream.length) for it in plan.items] == [
        (stream_seed(5, p, "think"), 8) for p in ("a", "b")
    ]
    assert [(it.answer_stream.seed, it.answer_stream.length) for it in plan.items] == [
        (stream_seed(5, p, "answer"), 12) for p in ("a", "b")
    ]


def test_a_wait_near_the_budget_is_cut_at_the_budget_in_the_two_phase_sweep():
    """A multi-token "Wait" inserted a token before the largest budget is cut there: the thinking never exceeds the
    budget, and the row is not resumed (it is at the budget, not stopped)."""
    from prunetts.generation.backends import Result
    from prunetts.generation.sampling import Stream
    from prunetts.generation.sweep import SweepItem, SweepPlan, two_phase

    class Scripted:
        def __init__(self):
            self.think_calls = 0

        def generate(self, reqs, desc=""):
            if desc.startswith("think"):
                self.think_calls += 1
                return [Result([1, 1, 1][: r.max_new], True) for r in reqs]
            return [Result([5], True) for _ in reqs]

    plan = SweepPlan(
        items=[SweepItem("p", [0], Stream(1, 4), Stream(2, 8))],
        budgets=[2, 4],
        think_stop=frozenset({9}),
        answer_stop=frozenset({9}),
        max_gen_toks=8,
        closing=lambda ids, hit: [99],
        num_ignore=2,
        ignore_ids=[7, 7, 7],
    )
    backend = Scripted()
    (o,) = two_phase(backend, plan)
    assert o.thinking == [1, 1, 1, 7] and o.wait_at == [3] and not o.stopped
    assert backend.think_calls == 1
    assert list(o.answers) == [Cut(2, True), Cut(4, True)]


def test_eos_ids_take_the_tokenizers_and_every_id_of_the_config():
    """Llama 3 and Qwen3 configs list several end ids (eos_token_id: [..]): each one stops generation."""
    from types import SimpleNamespace

    tok = SimpleNamespace(eos_token_id=2)
    assert eos_ids(tok, SimpleNamespace(eos_token_id=[5, 6])) == {2, 5, 6}
    assert eos_ids(tok, SimpleNamespace(eos_token_id=7)) == {2, 7}
    assert eos_ids(tok, SimpleNamespace(eos_token_id=None)) == {2}
    assert eos_ids(SimpleNamespace(eos_token_id=None), SimpleNamespace(eos_token_id=[])) == set()


def test_opens_thinking_looks_at_the_prompts_end_only():
    """Every chat prompt holds the thinking start's first token (<|im_start|>) somewhere: only a prompt that ends
    with the whole thinking start already opens it."""
    from prunetts.generation.sweep import opens_thinking

    assert opens_thinking([1, 2, 3, 4], [3, 4])
    assert not opens_thinking([3, 4, 1], [3, 4]) and not opens_thinking([3, 1, 4], [3, 4])
    assert not opens_thinking([1, 3], [3, 4]) and not opens_thinking([1, 2], [])


def test_stream_seeds_are_pinned_so_a_seed_means_the_same_samples_in_every_version():
    """The samples of (seed, problem, phase) are part of the results: the hash behind them must not drift."""
    from prunetts.generation.sampling import Stream, stream_seed

    assert stream_seed(0, "demo-123", "think") == 312168877685810815
    assert stream_seed(0, "demo-123", "answer") == 1327264567229105085
    s = Stream(stream_seed(0, "demo-123", "think"), 8)
    assert s.engine_seed == s.seed  # vLLM's seed of a fresh stream is the stream's own
    assert s.at(3).engine_seed == 9181433953501644075  # a continuation: its own seed, per offset
    assert s.at(3)[0] == s[3] == float(s.values()[3]) and s.at(3).at(2)[0] == s[5]


def test_top_p_keeps_the_smallest_prefix_that_reaches_it_on_an_exact_tie():
    """Probabilities 0.5, 0.25, 0.25 with top_p 0.5: the first token alone reaches it, so only it is kept (as
    transformers' TopPLogitsWarper), even for a uniform at the very top of the CDF."""
    import math

    import torch
    from transformers.generation.logits_process import TopPLogitsWarper

    from prunetts.generation.sampling import sample_next

    logits = torch.tensor([[math.log(2.0), 0.0, 0.0]])
    assert torch.softmax(logits, -1).tolist() == [[0.5, 0.25, 0.25]]
    assert torch.isinf(TopPLogitsWarper(0.5)(None, logits.clone())[0, 1:]).all()
    assert sample_next(logits.expand(3, -1), torch.tensor([0.0, 0.6, 0.999]), 1.0, top_p=0.5).tolist() == [0, 0, 0]
