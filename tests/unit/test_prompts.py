"""A checkpoint whose tokenizer cannot build the harness's prompts (no chat template, or no single-token thinking
stop) is named in one line: by the config check for a local checkpoint, and by the generation job before it loads a
model, never by a transformers traceback after the pruning."""

import copy

import pytest
import yaml

from prunetts.config import ConfigError, check
from prunetts.generation.prompts import chat_template_problem, check_delimiters, prompt_ids
from prunetts.models import ModelError, load_tokenizer
from tests.conftest import REPO, build_tiny


def _byte_tokenizer(specials, chat_template=None):
    """Byte-level tokenizer with only ``specials`` as special tokens (a Llama-like vocabulary: no ChatML)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    vocab = {ch: i for i, ch in enumerate(sorted(pre_tokenizers.ByteLevel.alphabet()))}
    tok = Tokenizer(models.BPE(vocab=vocab, merges=[]))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)
    tok.decoder = decoders.ByteLevel()
    tok.add_special_tokens(specials)
    return PreTrainedTokenizerFast(tokenizer_object=tok, eos_token=specials[0], chat_template=chat_template)


@pytest.fixture(scope="module")
def base_model(tmp_path_factory):
    """A tiny Llama whose tokenizer has no chat template (a base model)."""
    out = build_tiny("llama", tmp_path_factory.mktemp("base-llama"))
    (out / "chat_template.jinja").unlink()
    assert chat_template_problem(out) is not None
    return out


def test_no_chat_template_is_a_config_error(base_model):
    cfg = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    cfg["models"] = {"base": {"path": str(base_model)}}
    with pytest.raises(ConfigError) as e:
        check(cfg)
    assert "models.base.path" in str(e.value) and "no chat template" in str(e.value)
    ok = copy.deepcopy(cfg)
    ok["models"] = {"chat": {"path": str(REPO / "resources" / "demo-qwen3")}}
    check(ok)


def test_template_in_tokenizer_config_counts(tmp_path):
    tok = _byte_tokenizer(["</s>"], chat_template="{{ messages[0]['content'] }}")
    tok.save_pretrained(tmp_path)
    if (tmp_path / "chat_template.jinja").is_file():  # the older layout: the template inside tokenizer_config.json
        import json

        template = (tmp_path / "chat_template.jinja").read_text()
        (tmp_path / "chat_template.jinja").unlink()
        cfg = json.loads((tmp_path / "tokenizer_config.json").read_text())
        (tmp_path / "tokenizer_config.json").write_text(json.dumps({**cfg, "chat_template": template}))
    from transformers import AutoTokenizer

    assert chat_template_problem(tmp_path) is None
    assert AutoTokenizer.from_pretrained(tmp_path).chat_template


@pytest.mark.parametrize(
    "files",
    [
        {"chat_template.json": '{"chat_template": "{{ messages[0][\'content\'] }}"}'},  # transformers 4.4x layout
        {"chat_template.jinja": "{{ messages[0]['content'] }}"},
        {"tokenizer_config.json": '{"auto_map": {"AutoTokenizer": ["tok.MyTokenizer", null]}}'},  # its own code
        {"tokenizer_config.json": "not json"},  # named by the checkpoint checks, not here
        {},  # no tokenizer files: the job names it
    ],
)
def test_every_place_a_chat_template_can_come_from_counts(tmp_path, files):
    (tmp_path / "tokenizer_config.json").write_text('{"eos_token": "</s>"}')
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    if not files:
        (tmp_path / "tokenizer_config.json").unlink()
    assert chat_template_problem(tmp_path) is None
    (tmp_path / "tokenizer_config.json").write_text('{"eos_token": "</s>"}')
    for name in files:
        if name != "tokenizer_config.json":
            (tmp_path / name).unlink()
    assert "the tokenizer has no chat template" in chat_template_problem(tmp_path)


def test_no_chat_template_is_one_line_in_the_job(base_model):
    tok = load_tokenizer(str(base_model))
    with pytest.raises(ModelError, match="no chat template"):
        prompt_ids(tok, "What is 1+1?")


def test_a_stop_string_of_several_tokens_names_the_other_delimiters():
    llama_like = _byte_tokenizer(["<|eot_id|>", "<think>", "</think>"])
    with pytest.raises(ModelError, match=r"splits into \d+ tokens.*use delimiters: qwen3"):
        check_delimiters(llama_like, "s1")
    check_delimiters(llama_like, "qwen3")
    neither = _byte_tokenizer(["</s>"])
    with pytest.raises(ModelError, match="use a tokenizer that has it as a special token"):
        check_delimiters(neither, "qwen3")


@pytest.mark.parametrize(
    "declared_in", [None, "added_tokens_decoder", "extra_special_tokens", "stop_strings", "added_tokens.json"]
)
def test_the_config_check_finds_a_stop_declared_outside_tokenizer_json(tmp_path, declared_in):
    """transformers adds the special tokens tokenizer_config.json declares, so a stop declared only there is one
    token: the config check (files only) agrees with the generate job's check (the loaded tokenizer)."""
    import json
    import shutil

    from prunetts.generation.prompts import stop_token_problem
    from tests.conftest import DEMO_MODEL

    for f in DEMO_MODEL.iterdir():
        if f.name in ("tokenizer.json", "tokenizer_config.json"):
            shutil.copy(f, tmp_path / f.name)
        else:
            (tmp_path / f.name).symlink_to(f)
    text = (tmp_path / "tokenizer.json").read_text()
    (tmp_path / "tokenizer.json").write_text(text.replace('"<|im_start|>"', '"<|im_begin|>"'))
    config = json.loads((tmp_path / "tokenizer_config.json").read_text())
    if declared_in == "added_tokens_decoder":
        config["added_tokens_decoder"] = {
            "900": {"content": "<|im_start|>", "special": True, "lstrip": False, "rstrip": False,
                    "normalized": False, "single_word": False}
        }  # fmt: skip
    elif declared_in == "added_tokens.json":
        (tmp_path / "added_tokens.json").write_text(json.dumps({"<|im_start|>": 900}))
    elif declared_in:
        config[declared_in] = ["<|im_start|>"]
    (tmp_path / "tokenizer_config.json").write_text(json.dumps(config))
    problem = stop_token_problem(tmp_path, "s1")
    if declared_in in (None, "stop_strings"):  # a string under another key is no token
        assert problem is not None and "no single token" in problem and "use delimiters: qwen3" in problem
        with pytest.raises(ModelError, match="use delimiters: qwen3"):
            check_delimiters(load_tokenizer(str(tmp_path)), "s1")
    else:
        assert problem is None
        check_delimiters(load_tokenizer(str(tmp_path)), "s1")


def test_prompt_ids_are_the_templates_text_without_a_second_bos():
    """The harness tokenizes the rendered template with add_special_tokens=False: a tokenizer that adds a BOS (Llama)
    must not get a second one in front of the template's own."""
    from tokenizers.processors import TemplateProcessing

    template = "{{ bos_token }}{% for m in messages %}[{{ m['role'] }}]{{ m['content'] }}{% endfor %}"
    tok = _byte_tokenizer(["</s>", "<s>"], chat_template=template)
    tok.bos_token = "<s>"
    bos = tok.convert_tokens_to_ids("<s>")
    tok._tokenizer.post_processor = TemplateProcessing(single="<s> $A", special_tokens=[("<s>", bos)])
    assert tok("x")["input_ids"][0] == bos  # this tokenizer adds a BOS by default
    ids = prompt_ids(tok, "1+1?")
    assert ids.count(bos) == 1 and tok.decode(ids) == "<s>[user]1+1?"


def test_a_stop_string_only_inside_longer_vocabulary_entries_is_no_single_token(tmp_path):
    """tokenizer.json must hold the stop as a whole string: "<|im_start|>" inside "<|im_start|>x" is no token."""
    from prunetts.generation.prompts import stop_token_problem
    from tests.conftest import DEMO_MODEL

    for f in DEMO_MODEL.iterdir():
        if f.name != "tokenizer.json":
            (tmp_path / f.name).symlink_to(f)
    text = (DEMO_MODEL / "tokenizer.json").read_text()
    (tmp_path / "tokenizer.json").write_text(text.replace('"<|im_start|>"', '"<|im_start|>x"'))
    problem = stop_token_problem(tmp_path, "s1")
    assert problem is not None and "no single token" in problem
