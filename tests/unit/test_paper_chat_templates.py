"""The paper's two models under their chat templates (the other tests can only run the demo model's): the
generation job builds, character for character, the prompt the paper's harness fed the model (``delimiters: s1``,
both models) or Qwen3's own thinking format (``delimiters: qwen3``), and grading reads the answer in each format.

The templates below are written here to render what the models' released ``chat_template`` strings render for a
conversation of plain system and user turns (compared on 2026-12-01 with Qwen2.5-7B-Instruct's, which s1.1-7B was
fine-tuned from, and the Qwen3 release's, as PyPI packages ship them; the released strings are not copied: their
tool-call and assistant-history branches play no part in a prompt). Qwen2.5's inserts its default system turn when
the conversation has none; Qwen3's has no default and closes an empty thinking block only for
``enable_thinking=False``. The tokenizer around them is a byte-level one with the models' special tokens
(``<think>``/``</think>`` are added, non-special tokens in Qwen3's tokenizer, and absent from Qwen2.5's, so from
s1.1-7B's)."""

import json
from pathlib import Path
from types import SimpleNamespace

import pytest

from prunetts import artifacts
from prunetts.benchmarks.gpqa_diamond import format_prompt
from prunetts.generation import run
from prunetts.generation.budget_forcing import DELIMITERS, closing_text
from prunetts.generation.prompts import check_delimiters
from prunetts.grading import answer_segment, grade
from prunetts.models import ModelError, load_tokenizer

_TURNS = "{%- for m in messages %}{{- '<|im_start|>' + m.role + '\\n' + m.content + '<|im_end|>\\n' }}{%- endfor %}"
TEMPLATES = {
    "qwen2.5-instruct": "{%- if messages[0].role != 'system' %}{{- '<|im_start|>system\\nYou are Qwen, created by "
    "Alibaba Cloud. You are a helpful assistant.<|im_end|>\\n' }}{%- endif %}"
    + _TURNS
    + "{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}{%- endif %}",
    "qwen3": _TURNS
    + "{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}{%- if enable_thinking is defined and "
    "enable_thinking is false %}{{- '<think>\\n\\n</think>\\n\\n' }}{%- endif %}{%- endif %}",
}
CHATML = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]

# made-up problems (never real GPQA text: that data carries a canary)
MATH = "Find the remainder when $2^{10}$ is divided by $7$."
GPQA = format_prompt("Which colour are the leaves of the made-up zorbleberry shrub?", ["Red", "Blue", "Green", "Grey"])

# the prompt the paper's harness fed s1.1-7B (a logged sample): the template's default system turn, the problem as
# the user turn, the generation prompt, then the s1 thinking start
HARNESS_S11 = (
    "<|im_start|>system\nYou are Qwen, created by Alibaba Cloud. You are a helpful assistant.<|im_end|>\n"
    "<|im_start|>user\n{q}<|im_end|>\n<|im_start|>assistant\n<|im_start|>think"
)
# Qwen3-8B in the paper's code: the same s1 delimiters after Qwen3's template (no default system turn, thinking on)
HARNESS_QWEN3 = "<|im_start|>user\n{q}<|im_end|>\n<|im_start|>assistant\n<|im_start|>think"
# Qwen3's documented thinking format: the model writes <think>\n ... </think>\n\n after the generation prompt
QWEN3_NATIVE = "<|im_start|>user\n{q}<|im_end|>\n<|im_start|>assistant\n<think>\n"


def _checkpoint(root: Path, template: str, think_tokens: bool) -> Path:
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    vocab = {ch: i for i, ch in enumerate(sorted(pre_tokenizers.ByteLevel.alphabet()))}
    tok = Tokenizer(models.BPE(vocab=vocab, merges=[]))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)
    tok.decoder = decoders.ByteLevel()
    tok.add_special_tokens(CHATML)
    if think_tokens:
        tok.add_tokens(["<think>", "</think>"])
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok, eos_token="<|im_end|>", pad_token="<|endoftext|>", chat_template=TEMPLATES[template]
    )
    out = root / template
    fast.save_pretrained(out)
    eos = [fast.convert_tokens_to_ids(t) for t in ("<|im_end|>", "<|endoftext|>")]
    (out / "config.json").write_text(json.dumps({"model_type": "qwen2", "vocab_size": len(fast)}))
    (out / "generation_config.json").write_text(json.dumps({"eos_token_id": eos}))
    return out


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory):
    root = tmp_path_factory.mktemp("chat-templates")
    return {"s1.1-7B": _checkpoint(root, "qwen2.5-instruct", False), "Qwen3-8B": _checkpoint(root, "qwen3", True)}


class _Captured(Exception):
    pass


class _Recorder:
    def run_sweep(self, plan, on_done=None):
        raise _Captured(plan)


def _plan(monkeypatch, tmp_path, ckpt: Path, model_cfg: dict, prompts: list[str]):
    """The sweep plan the generation job hands its backend for ``prompts`` (``run.generate``, model not loaded)."""
    bench = tmp_path / "bench.parquet"
    rows = [
        dict(bench="b", impl_version=1, problem_id=str(i), prompt=p, gold="A", metadata="{}")
        for i, p in enumerate(prompts)
    ]
    artifacts.write("benchmark", rows, bench)
    monkeypatch.setattr(run, "make_backend", lambda *a, **k: (_Recorder(), SimpleNamespace(eos_token_id=None), None))
    with pytest.raises(_Captured) as got:
        run.generate(
            str(ckpt),
            str(bench),
            str(tmp_path / "gen.parquet"),
            model="m",
            variant="dense",
            bench="b",
            seed=7,
            budgets=[512, 1024],
            generation={"journal": False, "max_gen_toks": 64, "temperature": 1.0},
            model_cfg=model_cfg,
            impl_version=1,
            progress=False,
        )
    return got.value.args[0]


@pytest.mark.parametrize(
    "model, delimiters, expected",
    [("s1.1-7B", "s1", HARNESS_S11), ("Qwen3-8B", "s1", HARNESS_QWEN3), ("Qwen3-8B", "qwen3", QWEN3_NATIVE)],
    ids=["s1.1-7B-s1", "Qwen3-8B-s1", "Qwen3-8B-qwen3"],
)
def test_the_job_builds_the_harness_prompt_under_the_model_template(
    monkeypatch, tmp_path, checkpoints, model, delimiters, expected
):
    ckpt = checkpoints[model]
    tok = load_tokenizer(str(ckpt))
    plan = _plan(monkeypatch, tmp_path, ckpt, {"path": str(ckpt), "delimiters": delimiters}, [MATH, GPQA])
    got = [tok.decode(it.context, skip_special_tokens=False) for it in plan.items]
    assert got == [expected.format(q=MATH), expected.format(q=GPQA)]
    d = DELIMITERS[delimiters]
    # thinking stops on the set's single stop token or an end token of generation_config.json
    stops = {tok.decode([i], skip_special_tokens=False) for i in plan.think_stop}
    assert stops == {d.until_thinking, "<|im_end|>", "<|endoftext|>"}
    assert {tok.decode([i]) for i in plan.answer_stop} == {"<|im_end|>", "<|endoftext|>"}
    thinking = tok("so the remainder is 2", add_special_tokens=False)["input_ids"]
    assert tok.decode(plan.closing(thinking, False), skip_special_tokens=False) == d.natural_close
    cut = tok.decode(plan.closing(thinking, True), skip_special_tokens=False)
    if delimiters == "s1":
        assert cut == "\n<|im_start|>answer\nFinal Answer:"
    else:
        assert cut == (
            "\n\nConsidering the limited time by the user, I have to give the solution based on the thinking "
            "directly now.\n</think>\n\n"
        )


def test_a_system_prompt_replaces_the_default_turn_under_the_model_templates(monkeypatch, tmp_path, checkpoints):
    """``system_prompt: ""`` is an empty system turn (config/README): Qwen2.5's default one is gone, and Qwen3's
    template, which has no default, gets the empty turn too."""
    no_system = HARNESS_QWEN3  # the user turn, the generation prompt and the s1 thinking start
    for model in ("s1.1-7B", "Qwen3-8B"):
        ckpt = checkpoints[model]
        tok = load_tokenizer(str(ckpt))
        for system, head in (
            ("", "<|im_start|>system\n<|im_end|>\n"),
            ("Be brief.", "<|im_start|>system\nBe brief.<|im_end|>\n"),
        ):
            plan = _plan(monkeypatch, tmp_path, ckpt, {"path": str(ckpt), "system_prompt": system}, [MATH])
            assert tok.decode(plan.items[0].context, skip_special_tokens=False) == head + no_system.format(q=MATH)


def test_s1_1_has_no_native_thinking_tokens(checkpoints):
    """Qwen2.5's tokenizer (s1.1-7B's) has no ``</think>`` token: ``delimiters: qwen3`` is refused before the model
    loads, naming the set that fits."""
    tok = load_tokenizer(str(checkpoints["s1.1-7B"]))
    with pytest.raises(ModelError, match="use delimiters: s1"):
        check_delimiters(tok, "qwen3")
    check_delimiters(tok, "s1")
    check_delimiters(load_tokenizer(str(checkpoints["Qwen3-8B"])), "qwen3")


@pytest.mark.parametrize(
    "delimiters, thinking, hit, answer, gold, kind, segment",
    [
        # s1, natural stop: the model writes the newline after "<|im_start|>answer" itself
        ("s1", "2^10 = 1024 = 7*146 + 2.\n", False, "\nIt is $\\boxed{2}$.", "2", "math", "It is $\\boxed{2}$."),
        # s1, cut: "Final Answer:" is the delimiter's, the answer follows it
        ("s1", "2^10 = 1024, and 1024 mod 7", True, " 2", "2", "math", "Final Answer: 2"),
        ("s1", "Green fits the name", True, " C", "C", "choice", "Final Answer: C"),
        # Qwen3 under s1 may close its own <think> block inside the thinking: only the answer phase counts
        ("s1", "<think>\nmaybe \\boxed{A}\n</think>\n\n\\boxed{B}", False, "\n\\boxed{C}", "C", "choice", "\\boxed{C}"),
        # qwen3, natural stop at </think>: the model goes on with "\n\n" and the answer
        ("qwen3", "1024 = 7*146 + 2, not \\boxed{3}.\n", False, "\n\nIt is $\\boxed{2}$.", "2", "math", None),
        # qwen3, cut: Qwen's sentence ends with "</think>\n\n", the answer follows it
        ("qwen3", "2^10 mod 7 is", True, "**Final Answer**\n\\[\\boxed{2}\\]", "2", "math", None),
        ("qwen3", "Red? No: \\boxed{A} is wrong.", False, "\n\nAnswer: C", "C", "choice", "\n\nAnswer: C"),
    ],
)
def test_grading_reads_the_answer_phase_of_each_format(delimiters, thinking, hit, answer, gold, kind, segment):
    d = DELIMITERS[delimiters]
    full_text = d.think_start + thinking + closing_text(thinking, hit, d) + answer  # as sweep.budget_sweep writes it
    after_close = "\n\n" if hit and delimiters == "qwen3" else ""  # the tail of Qwen's budget sentence
    assert answer_segment(full_text, d.answer_marker) == (segment if segment is not None else after_close + answer)
    ((extracted, verdict),) = grade([(full_text, gold)], workers=1, marker=d.answer_marker, kind=kind)
    assert (extracted, verdict) == (gold, "correct")
