"""``prunetts prune``: the five documented flags work for every method and allocation; bad input is one line."""

import json
from pathlib import Path

import pytest

from prunetts import artifacts
from prunetts.cli import main
from tests.conftest import bench_file


@pytest.mark.parametrize(
    "method,allocation",
    [("wanda", "uniform"), ("wanda", "owl"), ("magnitude", "layerif"), ("magnitude", "owl"), ("shortgpt", "uniform")],
)
def test_five_flags_work(tiny_qwen3_dir, tmp_path, method, allocation):
    out = tmp_path / "out"
    args = [
        "prune",
        "--model",
        str(tiny_qwen3_dir),
        "--method",
        method,
        "--allocation",
        allocation,
        "--sparsity",
        "0.3",
        "--calibration",
        str(bench_file("c4_demo.jsonl")),
        "--out",
        str(out),
    ]
    # small windows keep the test fast; everything else is the CLI default
    assert main(args + ["--n-samples", "8", "--seqlen", "256"]) == 0
    summary = json.loads((out / "prunetts_prune.json").read_text())
    rows = artifacts.read("sparsity", out / "prunetts_sparsity.parquet").to_pylist()
    if method == "shortgpt":
        assert json.loads((out / "config.json").read_text())["num_hidden_layers"] == 2  # round(0.3 * 3) = 1 removed
        assert summary["variant"] == "shortgpt-s0.30"
    else:
        assert summary["realized_sparsity_prunable_linears"] == pytest.approx(0.3, abs=0.03)
        assert {r["variant"] for r in rows} == {f"{method}-{allocation}-s0.30"}
    if allocation in ("owl", "layerif"):
        assert summary["layer_scores"]
    from transformers import AutoModelForCausalLM

    AutoModelForCausalLM.from_pretrained(out)


@pytest.mark.parametrize(
    "extra,message",
    [
        (["--sparsity", "1.5"], "--sparsity 1.5: must be in (0, 1)"),
        (["--sparsity", "1"], "--sparsity 1.0: must be in (0, 1)"),  # every weight: not a pruned model
        # the workflow's rule: an unpruned copy named s0.00, or s1.00, or an id that is not the sparsity
        (["--sparsity", "0.00001"], "--sparsity 1e-05: more than 4 decimals"),
        (["--sparsity", "0.99999"], "--sparsity 0.99999: more than 4 decimals"),
        (["--sparsity", "0.12345"], "--sparsity 0.12345: more than 4 decimals"),
        (["--sparsity", "0.2", "--calibration", "/no/such.jsonl"], "--calibration /no/such.jsonl"),
        (["--method", "shortgpt"], "shortgpt needs exactly one of --sparsity or --shortgpt-layers"),
        # knobs out of the workflow schema's range stop before any work, not after the capture or the influence
        (["--sparsity", "0.2", "--n-samples", "0"], "argument --n-samples: 0 must be >= 1"),
        (["--sparsity", "0.2", "--seqlen", "2k"], "argument --seqlen: '2k' is not a whole number"),
        (["--sparsity", "0.2", "--owl-lambda", "0.6"], "argument --owl-lambda: 0.6 must be in (0, 0.5)"),
        (["--sparsity", "0.2", "--owl-m", "nan"], "argument --owl-m: nan must be > 0"),
        (["--sparsity", "0.2", "--projection-dim", "-1"], "argument --projection-dim: -1 must be >= 0"),
        (["--sparsity", "0.2", "--layerif-e2", "1.5"], "argument --layerif-e2: 1.5 must be in [0, 1]"),
        (
            ["--sparsity", "0.2", "--allocation", "layerif", "--layerif-e1", "0.5", "--layerif-e2", "0.1"],
            "--layerif-e1/--layerif-e2: e1 = 0.5 must be below e2 = 0.1",
        ),
    ],
)
def test_bad_input_is_one_line(tiny_qwen3_dir, tmp_path, capsys, extra, message):
    args = ["prune", "--model", str(tiny_qwen3_dir), "--method", "wanda", "--out", str(tmp_path / "o")]
    with pytest.raises(SystemExit) as e:
        main(args + extra)
    assert e.value.code != 0
    err = capsys.readouterr().err.strip().splitlines()
    assert message in err[-1] and "Traceback" not in "\n".join(err)


@pytest.mark.parametrize(
    "extra,message",
    [
        (["--seqlen", "513"], "--seqlen 513: beyond --model"),
        (["--seqlen", "64", "--allocation", "layerif", "--influence-max-len", "600"], "--influence-max-len 600"),
    ],
)
def test_lengths_beyond_the_model_context_are_one_line(tiny_qwen3_dir, tmp_path, capsys, extra, message):
    """Beyond the tiny model's 512 positions: the capture / LayerIF ran at untrained positions without a word."""
    args = ["prune", "--model", str(tiny_qwen3_dir), "--method", "wanda", "--sparsity", "0.2", "--calibration", "demo"]
    assert main(args + ["--out", str(tmp_path / "o"), *extra]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0] and "context of 512 tokens" in err[0], err
    assert not (tmp_path / "o").exists() or not any((tmp_path / "o").iterdir())


def test_model_path_without_config(tmp_path, capsys):
    with pytest.raises(SystemExit):
        main(
            [
                "prune",
                "--model",
                str(tmp_path),
                "--method",
                "magnitude",
                "--sparsity",
                "0.2",
                "--out",
                str(tmp_path / "o"),
            ]
        )
    assert "no config.json" in capsys.readouterr().err


def test_hub_model_that_cannot_be_fetched_is_one_line(tmp_path, capsys, monkeypatch):
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)  # no network attempt, empty cache: a clean miss
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    args = ["prune", "--model", "org/no-such-model", "--method", "magnitude", "--sparsity", "0.2"]
    assert main(args + ["--out", str(tmp_path / "o")]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "Traceback" not in err[0]
    assert err[0].startswith("prunetts: error: org/no-such-model: cannot get the checkpoint from the Hugging Face hub")
    assert "not in the local cache" in err[0] and not (tmp_path / "o").exists()


@pytest.mark.parametrize(
    "extra,message",
    [
        (["--method", "wanda", "--calibration", "{notes}"], "notes.txt: unsupported calibration file type"),
        (["--method", "wanda", "--calibration", "{body}"], "body.jsonl: no 'text' field in the records"),
        (["--method", "magnitude", "--allocation", "layerif", "--influence-train", "{body}"], "body.jsonl: no 'text'"),
    ],
)
def test_text_files_are_checked_before_a_hub_checkpoint_is_fetched(
    tiny_qwen3_dir, tmp_path, capsys, monkeypatch, extra, message
):
    """A wrong calibration or influence file is one line before the checkpoint's weights are fetched (16 GB for
    Qwen3-8B; here, offline, the cache holds all of the hub id's files but the weights, whose fetch would fail first),
    and a wrong hub id is one line before the text files are read (--calibration c4: a 300 MB download)."""
    import shutil

    from huggingface_hub import constants

    from tests.conftest import fake_hub

    weightless = tmp_path / "weightless"
    shutil.copytree(tiny_qwen3_dir, weightless, ignore=shutil.ignore_patterns("*.safetensors"))
    commit = "0123456789abcdef0123456789abcdef01234567"
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(
        constants, "HF_HUB_CACHE", str(fake_hub(tmp_path / "hub", "org/tiny", {commit: weightless}, commit))
    )
    (tmp_path / "notes.txt").write_text("some text\n")
    (tmp_path / "body.jsonl").write_text('{"body": "some text"}\n')
    files = {"notes": tmp_path / "notes.txt", "body": tmp_path / "body.jsonl"}
    extra = [x.format(**files) for x in extra]
    assert _prune("org/tiny", tmp_path / "o", "--sparsity", "0.2", *extra) == 1
    line = _one_line_error(capsys)
    assert message in line and "hub" not in line, line
    assert _prune("org/tiny", tmp_path / "o", "--sparsity", "0.2", "--method", "magnitude") == 1
    assert "model.safetensors" in _one_line_error(capsys)  # the weights' fetch is what fails without a text file
    assert _prune("org/no-such-model", tmp_path / "o", "--sparsity", "0.2", *extra) == 1
    line = _one_line_error(capsys)
    assert "org/no-such-model: cannot get the checkpoint from the Hugging Face hub" in line and message not in line
    if "--calibration" in extra:  # a bad calibration file, which wanda under OWL reads
        # OWL settings past sparsity 1 on every unequal set of ratios: one line before the texts are read (c4: a
        # download)
        owl = [*extra, "--allocation", "owl", "--owl-lambda", "0.1"]
        assert _prune("org/tiny", tmp_path / "o", "--sparsity", "0.96", *owl) == 1
        line = _one_line_error(capsys)
        assert "--owl-lambda/--sparsity: OWL at sparsity 0.96" in line and message not in line


def _prune(model, out, *extra):
    return main(["prune", "--model", str(model), "--out", str(out), *map(str, extra)])


def _one_line_error(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert err and "Traceback" not in "\n".join(err)
    return err[-1]


def test_argument_errors_are_one_line_without_usage(tiny_qwen3_dir, tmp_path, capsys, monkeypatch):
    (tmp_path / "afile").write_text("x")
    (tmp_path / "models").mkdir()
    monkeypatch.chdir(tmp_path)
    cases = [
        (["--out", str(tmp_path / "afile")], "is a file; give a new or empty directory"),
        (["--out", str(tmp_path / "afile" / "sub")], "cannot be created"),
        (["--model", str(tmp_path / "no-such")], "no such directory"),
        (["--model", "models/lama"], "no such directory"),  # a typo'd local path (models/ exists), not a hub id
    ]
    for extra, message in cases:
        args = ["prune", "--model", str(tiny_qwen3_dir), "--method", "magnitude", "--sparsity", "0.2"]
        args += ["--out", str(tmp_path / "o")]
        with pytest.raises(SystemExit) as e:
            main(args + extra)  # a later flag overrides the earlier one
        assert e.value.code == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and message in err[0] and err[0].startswith("prunetts prune: error:"), err


def test_checks_before_any_work(tiny_qwen3_dir, tmp_path, capsys, caplog, monkeypatch):
    """Device, ShortGPT layer count, architecture and tokenizer problems stop before calibration is even read, and
    leave no output directory."""
    import shutil

    from prunetts import calibration

    def never(*_a, **_k):
        raise AssertionError("calibration read before the checks")

    monkeypatch.setattr(calibration, "load_texts", never)
    c4 = str(bench_file("c4_demo.jsonl"))
    odd = tmp_path / "mistral"
    shutil.copytree(tiny_qwen3_dir, odd)
    cfg = json.loads((odd / "config.json").read_text())
    (odd / "config.json").write_text(json.dumps({**cfg, "model_type": "mistral"}))
    gpt2 = tmp_path / "gpt2"  # counts its layers as n_layer: named as the architecture, not as a broken config
    shutil.copytree(tiny_qwen3_dir, gpt2)
    (gpt2 / "config.json").write_text(json.dumps({"model_type": "gpt2", "n_layer": 3, "n_embd": 64}))
    typeless = tmp_path / "typeless"  # a config.json stripped of model_type: named as such, not as "None"
    shutil.copytree(tiny_qwen3_dir, typeless)
    (typeless / "config.json").write_text(json.dumps({k: v for k, v in cfg.items() if k != "model_type"}))
    no_tok = tmp_path / "weights-only"
    no_tok.mkdir()
    for name in ("config.json", "model.safetensors"):
        shutil.copy(tiny_qwen3_dir / name, no_tok / name)
    wanda = ["--method", "wanda", "--sparsity", "0.2"]
    cases = [
        (tiny_qwen3_dir, [*wanda, "--device", "tpu"], "device 'tpu': not a torch device"),
        (tiny_qwen3_dir, [*wanda, "--device", "cuda:7"], "device 'cuda:7'"),  # no CUDA here, or not 8 GPUs
        (tiny_qwen3_dir, ["--method", "shortgpt", "--shortgpt-layers", "3"], "cannot remove 3 of 3 layers"),
        (tiny_qwen3_dir, ["--method", "shortgpt", "--sparsity", "0.99"], "cannot remove 3 of 3 layers"),
        (odd, wanda, "model_type 'mistral' is not supported"),
        (gpt2, wanda, "model_type 'gpt2' is not supported (supported: qwen2, qwen3, llama)"),
        (typeless, wanda, "config.json has no model_type (supported: qwen2, qwen3, llama)"),
        (no_tok, wanda, "no tokenizer"),
        # OWL on 3 layers: the most-pruned layer gets at least S + 2 lambda / 3, whatever the outlier ratios
        (
            tiny_qwen3_dir,
            [*wanda[:2], "--allocation", "owl", "--sparsity", "0.96", "--owl-lambda", "0.1"],
            "at least 1.0267",
        ),
    ]
    for model, extra, message in cases:
        out = tmp_path / "o"
        assert _prune(model, out, "--calibration", c4, "--seqlen", 64, *extra) == 1
        assert message in _one_line_error(capsys)
        assert not out.exists()
    assert _prune(no_tok, tmp_path / "m", "--method", "magnitude", "--sparsity", "0.2") == 0  # needs no tokenizer
    assert not any((tmp_path / "m").glob("tokenizer*"))
    assert "has no tokenizer (tokenizer.json / " in caplog.text  # but is told it gets none
    caplog.clear()
    assert _prune(tiny_qwen3_dir, tmp_path / "t", "--method", "magnitude", "--sparsity", "0.2") == 0
    assert "no tokenizer" not in caplog.text


def test_a_shortgpt_sparsity_rounded_up_to_one_layer_is_warned(tiny_qwen3_dir, tmp_path, caplog):
    import logging

    c4 = str(bench_file("c4_demo.jsonl"))
    with caplog.at_level(logging.WARNING, logger="prunetts"):
        args = ["--calibration", c4, "--seqlen", 64, "--n-samples", 4, "--method", "shortgpt"]
        assert _prune(tiny_qwen3_dir, tmp_path / "o", *args, "--sparsity", "0.1") == 0
        assert "ShortGPT at sparsity 0.1 removes 1 of the 3 layers (33% of them), not none" in caplog.text
        caplog.clear()
        assert _prune(tiny_qwen3_dir, tmp_path / "p", *args, "--sparsity", "0.3") == 0  # round(0.9) = 1: as asked
        assert "ShortGPT at sparsity" not in caplog.text


def test_an_owl_setting_that_may_exceed_one_is_warned_before_the_calibration(tiny_qwen3_dir, tmp_path, caplog):
    """S = 0.9, lambda = 0.1 on 3 layers: the most-pruned layer gets 0.9667 to 1.0333 by the outlier ratios, so the
    run is warned before the calibration is read (and stops only if the ratios make it exceed 1)."""
    import logging

    c4 = str(bench_file("c4_demo.jsonl"))
    flags = ["--method", "magnitude", "--allocation", "owl", "--sparsity", "0.9", "--owl-lambda", "0.1"]
    with caplog.at_level(logging.INFO, logger="prunetts"):
        # exit 0 or 1, by the outlier ratios of this random model
        _prune(tiny_qwen3_dir, tmp_path / "o", "--calibration", c4, "--seqlen", 64, "--n-samples", 4, *flags)
    messages = [r.getMessage() for r in caplog.records]
    warned = next(i for i, m in enumerate(messages) if "may give a layer of the 3 a sparsity above 1" in m)
    assert "up to 1.0333" in messages[warned] and "a lambda of at most 0.0750 cannot" in messages[warned]
    assert warned < next(i for i, m in enumerate(messages) if m.startswith("calibration"))


@pytest.mark.parametrize(
    "lines,message",
    [
        ([], "no records in the file"),
        (['{"text": "a"}', '{"body": "b"}'], "record 2 has no 'text' field"),
        (['{"text": "a"}', '{"text": null}'], "record 2 has null, not a string"),
        (['{"text": 5}'], "record 1 has a int, not a string"),
        (['{"body": "b"}'], "no 'text' field in the records (fields: 'body')"),
    ],
)
def test_bad_calibration_records_are_one_line(tiny_qwen3_dir, tmp_path, capsys, lines, message):
    texts = tmp_path / "texts.jsonl"
    texts.write_text("".join(line + "\n" for line in lines))
    args = ["--method", "wanda", "--sparsity", "0.2", "--calibration", texts, "--seqlen", 64]  # within 512 positions
    assert _prune(tiny_qwen3_dir, tmp_path / "o", *args) == 1
    line = _one_line_error(capsys)
    assert message in line
    assert ("--text-field" in line) == bool(lines)  # a record problem names the CLI flag among the fixes


def test_summary_records_what_ran_and_side_files_travel(tiny_qwen3_dir, tmp_path, caplog):
    import shutil

    model = tmp_path / "model"
    shutil.copytree(tiny_qwen3_dir, model)
    (model / "LICENSE").write_text("terms")
    (model / "tokenization_custom.py").write_text("# the checkpoint's own code\n")
    out = tmp_path / "o"
    texts = str(bench_file("c4_demo.jsonl"))
    args = ["--method", "magnitude", "--allocation", "layerif", "--sparsity", "0.2", "--calibration", texts]
    args += ["--n-train", "100000", "--n-val", "4", "--projection-dim", "0", "--influence-max-len", "32"]
    with caplog.at_level("WARNING"):
        assert _prune(model, out, *args, "--owl-m", "3", "--wanda-mode", "one_pass") == 0
    assert "ignored (not read by magnitude with layerif allocation): --wanda-mode, --owl-m" in caplog.text
    summary = json.loads((out / "prunetts_prune.json").read_text())
    n_texts = len(bench_file("c4_demo.jsonl").read_text().splitlines())
    train, val = summary["resolved"]["influence_texts"].values()
    assert train + val == n_texts and val == 4 and summary["arguments"]["n_train"] == 100000  # shrunk, recorded
    assert summary["resolved"]["out"] == str(out.resolve()) and summary["versions"]["prunetts"]
    assert summary["target_sparsity_prunable_linears"] == pytest.approx(0.2, abs=1e-6)
    assert (out / "LICENSE").read_text() == "terms" and (out / "tokenization_custom.py").is_file()
    assert not (out / "README.md").exists()


def test_named_chat_templates_travel_with_the_pruned_checkpoint(tiny_qwen3_dir, tmp_path):
    """transformers saves a tokenizer's named chat templates (``chat_template="tool_use"``) as
    additional_chat_templates/<name>.jinja; the pruned checkpoint keeps them, so the name still selects its template
    (a tokenizer without them would fall back to the default one)."""
    import shutil

    from transformers import AutoTokenizer

    model = tmp_path / "model"
    shutil.copytree(tiny_qwen3_dir, model)
    tok = AutoTokenizer.from_pretrained(model)
    default = tok.chat_template
    tok.chat_template = {"default": default, "tool_use": "TOOL:{{ messages[0]['content'] }}"}
    tok.save_pretrained(model)
    assert (model / "additional_chat_templates" / "tool_use.jinja").is_file()  # the layout this test is about
    out = tmp_path / "o"
    assert _prune(model, out, "--method", "magnitude", "--sparsity", "0.2") == 0
    pruned = AutoTokenizer.from_pretrained(out)
    messages = [{"role": "user", "content": "hi"}]
    assert pruned.apply_chat_template(messages, chat_template="tool_use", tokenize=False) == "TOOL:hi"
    assert pruned.apply_chat_template(messages, tokenize=False) == tok.apply_chat_template(
        messages, chat_template=default, tokenize=False
    )


def test_failed_run_leaves_out_as_it_was(tiny_qwen3_dir, tmp_path, capsys, monkeypatch):
    from prunetts.pruning import pruner

    def broken(*_a, **_k):
        raise OSError("disk full")

    monkeypatch.setattr(pruner.Writer, "finish", broken)
    out = tmp_path / "empty"
    out.mkdir()
    assert _prune(tiny_qwen3_dir, out, "--method", "magnitude", "--sparsity", "0.2") == 1
    assert "disk full" in _one_line_error(capsys) and out.is_dir() and not any(out.iterdir())
    assert _prune(tiny_qwen3_dir, tmp_path / "new", "--method", "magnitude", "--sparsity", "0.2") == 1
    assert not (tmp_path / "new").exists()


def test_version(capsys):
    from prunetts import __version__

    with pytest.raises(SystemExit) as e:
        main(["--version"])
    assert e.value.code == 0 and capsys.readouterr().out.strip() == f"prunetts {__version__}"


def test_hub_model_from_the_cache_records_its_commit(tiny_qwen3_dir, tmp_path, monkeypatch):
    """A hub id is pruned from its cached snapshot (offline): the default branch's commit, or the one --revision
    pins, and the summary names the commit it used."""
    from huggingface_hub import constants

    from tests.conftest import fake_hub, perturbed_copy

    main_commit, pinned = "0123456789abcdef0123456789abcdef01234567", "fedcba9876543210fedcba9876543210fedcba98"
    later = perturbed_copy(tiny_qwen3_dir, tmp_path / "later")
    cache = fake_hub(tmp_path / "hub", "org/tiny", {main_commit: tiny_qwen3_dir, pinned: later}, main=main_commit)
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(cache))
    runs = {}
    for name, model, extra in (
        ("hub-main", "org/tiny", ()),
        ("hub-pinned", "org/tiny", ("--revision", pinned)),
        ("local-main", tiny_qwen3_dir, ()),
        ("local-later", later, ()),
    ):
        assert _prune(model, tmp_path / name, "--method", "magnitude", "--sparsity", "0.2", *extra) == 0
        summary = json.loads((tmp_path / name / "prunetts_prune.json").read_text())
        runs[name] = summary["resolved"]["hub_commit"], (tmp_path / name / "model.safetensors").read_bytes()
    assert runs["hub-main"][0] == main_commit and runs["hub-pinned"][0] == pinned
    assert runs["local-main"][0] is None and runs["local-later"][0] is None
    # the weights each revision names, not the default branch's
    assert runs["hub-main"][1] == runs["local-main"][1] and runs["hub-pinned"][1] == runs["local-later"][1]
    assert runs["hub-main"][1] != runs["hub-pinned"][1]


def test_a_hub_id_stays_a_hub_id_beside_an_out_named_after_its_organisation(
    tiny_qwen3_dir, tmp_path, monkeypatch, capsys
):
    """--out ORG/NAME-pruned creates a local ORG/ folder: neither that run (the model not yet in the cache) nor a
    later one from the same directory (cached) may then take --model ORG/NAME for a missing local path."""
    import huggingface_hub
    from huggingface_hub import constants

    from tests.conftest import fake_hub

    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "empty-hub"))
    downloads = []

    def download(repo_id, **_kw):  # a first download: nothing in the cache until it is fetched
        downloads.append(repo_id)
        return str(tiny_qwen3_dir)

    args = ["--method", "magnitude", "--sparsity", "0.2"]
    with monkeypatch.context() as m:
        m.setattr(huggingface_hub, "snapshot_download", download)
        assert _prune("org/tiny", "org/tiny-s0.2", *args) == 0
    # its files but the weights (the id checked before any text is read), then the weights
    assert downloads == ["org/tiny", "org/tiny"] and (tmp_path / "org" / "tiny-s0.2" / "config.json").is_file()
    commit = "0123456789abcdef0123456789abcdef01234567"
    cache = fake_hub(tmp_path / "hub", "org/tiny", {commit: tiny_qwen3_dir}, main=commit)
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(cache))
    assert _prune("org/tiny", "org/tiny-s0.5", "--method", "magnitude", "--sparsity", "0.5") == 0
    summary = json.loads((tmp_path / "org" / "tiny-s0.5" / "prunetts_prune.json").read_text())
    assert summary["resolved"]["hub_commit"] == commit
    capsys.readouterr()
    with monkeypatch.context() as m, pytest.raises(SystemExit):  # a typo'd local path beside its folder is still
        m.setattr(huggingface_hub, "snapshot_download", download)  # one line, not a hub look-up
        _prune("org/tny", "o", *args)
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "a folder org/ is in the working directory and the hub cache holds no org/tny" in err[0]
    assert downloads == ["org/tiny", "org/tiny"] and not (tmp_path / "o").exists()


def test_revision_mistakes_are_one_line(tiny_qwen3_dir, tmp_path, capsys, monkeypatch):
    """--revision on a local directory, and a revision the cache does not hold (offline), each stop with one line
    and leave no output."""
    from huggingface_hub import constants

    from tests.conftest import fake_hub

    commit = "0123456789abcdef0123456789abcdef01234567"
    cache = fake_hub(tmp_path / "hub", "org/tiny", {commit: tiny_qwen3_dir}, main=commit)
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(cache))
    base = ["--method", "magnitude", "--sparsity", "0.2", "--revision"]
    cases = (  # an argument mistake exits 2 (argparse's convention), a failed run 1
        (tiny_qwen3_dir, commit, 2, "pins a hub id, but --model"),
        ("org/tiny", "1111111111111111111111111111111111111111", 1, "that revision is not in the local cache"),
        ("org/tiny", "v2.0", 1, "that revision is not in the local cache"),
    )
    for i, (model, revision, code, expected) in enumerate(cases):
        try:
            rc = _prune(model, tmp_path / f"o{i}", *base, revision)
        except SystemExit as e:
            rc = e.code
        assert rc == code
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and expected in err[0] and "Traceback" not in err[0], err
        assert not (tmp_path / f"o{i}").exists()


def test_influence_files_with_their_own_text_field(tiny_qwen3_dir, tmp_path, caplog):
    """LayerIF traces whose column is not the calibration's: ``--influence-text-field`` names it; without influence
    files that flag is read by nothing and reported."""
    traces = tmp_path / "traces.jsonl"
    traces.write_text("".join(json.dumps({"trajectory": f"step {i} then {i + 1}"}) + "\n" for i in range(8)))
    args = ["--method", "magnitude", "--allocation", "layerif", "--sparsity", "0.2", "--projection-dim", "0"]
    args += ["--n-train", "4", "--n-val", "2", "--influence-max-len", "16"]
    with caplog.at_level("WARNING"):
        assert _prune(tiny_qwen3_dir, tmp_path / "a", *args, "--influence-train", str(traces), "--influence-text-field",
                      "trajectory") == 0  # fmt: skip
    assert "ignored" not in caplog.text
    assert json.loads((tmp_path / "a" / "prunetts_prune.json").read_text())["resolved"]["influence_texts"] == {
        "train": 4,
        "val": 2,
    }
    with caplog.at_level("WARNING"):
        assert (
            _prune(tiny_qwen3_dir, tmp_path / "b", *args, "--calibration", "demo", "--influence-text-field", "x") == 0
        )
    assert "ignored (not read by magnitude with layerif allocation): --influence-text-field" in caplog.text


def test_influence_text_problems_stop_before_the_expensive_work(tiny_qwen3_dir, tmp_path, capsys, monkeypatch):
    """LayerIF's texts are read and tokenized before the calibration windows, the dense capture and the model load,
    and a missing field names the flag that sets it: --influence-text-field for influence files."""
    from prunetts import calibration, capture, models

    def too_late(*_a, **_k):
        raise AssertionError("expensive work before the influence texts were checked")

    for module, name in [(calibration, "paper_windows"), (calibration, "packed_windows")]:
        monkeypatch.setattr(module, name, too_late)
    monkeypatch.setattr(capture, "capture", too_late)
    monkeypatch.setattr(models, "load_model", too_late)
    prompts = tmp_path / "prompts.jsonl"
    prompts.write_text("".join(json.dumps({"prompt": f"question {i} is long enough"}) + "\n" for i in range(8)))
    short = tmp_path / "short.jsonl"
    short.write_text("".join(json.dumps({"text": t}) + "\n" for t in ["a b c d", "e f g h", "x", "i j k l"]))
    c4 = str(bench_file("c4_demo.jsonl"))
    args = ["--method", "wanda", "--wanda-mode", "one_pass", "--allocation", "layerif", "--sparsity", "0.3"]
    args += ["--calibration", c4, "--n-train", "3", "--n-val", "1", "--seqlen", "64"]
    cases = [
        (["--influence-train", prompts], "prompts.jsonl: no 'text' field in the records (fields: 'prompt')"),
        (["--influence-train", c4, "--influence-val", prompts], "prompts.jsonl: no 'text' field"),
        (["--influence-train", short], f"--influence-train {short}: LayerIF: "),
    ]
    for extra, message in cases:
        assert _prune(tiny_qwen3_dir, tmp_path / "o", *args, *extra) == 1
        line = _one_line_error(capsys)
        assert message in line, line
        if "LayerIF" in message:  # the split decides whether it is a training or validation text
            assert "text 'x' has 1 token(s); the next-token loss needs at least 2" in line, line
        if "field" in message:
            assert line.endswith("(influence.text_field, CLI --influence-text-field)"), line
        assert not (tmp_path / "o").exists()
    # the calibration texts as LayerIF's pool: their own flag
    assert _prune(tiny_qwen3_dir, tmp_path / "o", *args, "--calibration", prompts) == 1
    assert _one_line_error(capsys).endswith("(calibration.text_field, CLI --text-field)")


def test_fp16_overflow_stops_wanda_with_the_fix(tiny_qwen3_dir, tmp_path, capsys):
    """float16 overflow made the statistics of the layers after it inf/NaN, which Wanda silently read as "prune
    nothing" (exit 0, realized sparsity far below the target); now one line names the layer and --dtype."""
    from tests.unit.test_pruning_suite import overflowing_copy

    hot = overflowing_copy(tiny_qwen3_dir, tmp_path / "hot", layer=1)
    args = ["--method", "wanda", "--sparsity", "0.3", "--calibration", bench_file("c4_demo.jsonl"), "--n-samples"]
    args += ["4", "--seqlen", "64"]
    for extra, stage in (
        ([], "Wanda"),
        (["--wanda-mode", "one_pass"], "capture"),
        (["--allocation", "owl"], "capture"),
    ):
        assert _prune(hot, tmp_path / "o", *args, "--dtype", "float16", *extra) == 1
        line = _one_line_error(capsys)
        assert line.startswith(f"prunetts: error: {stage}: layer 2 self_attn.q_proj: the input activations are inf/NaN")
        assert "(float16 overflow); compute in bfloat16 or float32 (capture.dtype, CLI --dtype)" in line
        assert not (tmp_path / "o").exists()
    assert _prune(hot, tmp_path / "o", *args, "--dtype", "float32") == 0


def test_realized_sparsity_below_the_target_is_reported(tiny_qwen3_dir, tmp_path, caplog, monkeypatch):
    """Masks that prune clearly less than allocated (beyond the per-row rounding) are reported, not only recorded."""
    from prunetts.pruning import pruner
    from prunetts.pruning.magnitude import magnitude_mask

    args = ["--method", "magnitude", "--sparsity", "0.3"]
    with caplog.at_level("WARNING"):
        assert _prune(tiny_qwen3_dir, tmp_path / "ok", *args) == 0
        wanda = ["--method", "wanda", "--sparsity", "0.3", "--calibration", bench_file("c4_demo.jsonl")]
        assert _prune(tiny_qwen3_dir, tmp_path / "w", *wanda, "--n-samples", "4", "--seqlen", "64") == 0
    assert "below the target" not in caplog.text  # row-wise rounding of a tiny model is no shortfall
    monkeypatch.setattr(pruner, "magnitude_mask", lambda w, s: magnitude_mask(w, s / 2))
    with caplog.at_level("WARNING"):
        assert _prune(tiny_qwen3_dir, tmp_path / "half", *args) == 0
    assert "over the prunable linears is below the target 0.3000: 21 linears pruned less" in caplog.text


def test_a_terminated_run_leaves_out_as_it_was_and_a_full_out_names_its_files(tiny_qwen3_dir, tmp_path, capsys):
    import os
    import signal
    import time

    from prunetts import checkpoint

    real_write = checkpoint.Writer._write

    def killed(self, name, t):  # SIGTERM (a Slurm time limit, timeout, kill) while the shards are being written
        real_write(self, name, t)
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(5)

    out = tmp_path / "o"
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(checkpoint.Writer, "_write", killed)
        with pytest.raises(SystemExit) as e:
            _prune(tiny_qwen3_dir, out, "--method", "magnitude", "--sparsity", "0.2")
    assert e.value.code == 128 + signal.SIGTERM and not out.exists()  # no hidden .shard-* left: rerun as it is
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL  # the CLI's handler does not outlive the run
    out.mkdir()
    (out / ".shard-00000.safetensors").write_text("x")
    with pytest.raises(SystemExit):
        _prune(tiny_qwen3_dir, out, "--method", "magnitude", "--sparsity", "0.2")
    assert "exists and is not empty (holds .shard-00000.safetensors)" in _one_line_error(capsys)


def test_layerif_with_a_single_calibration_text_names_the_fix_that_helps(tiny_qwen3_dir, tmp_path, capsys):
    """One text cannot be split into training and validation texts: the line must not suggest fewer texts."""
    texts = tmp_path / "one.jsonl"
    texts.write_text(json.dumps({"text": "a single calibration text, long enough for a loss"}) + "\n")
    args = ["--method", "magnitude", "--allocation", "layerif", "--sparsity", "0.2", "--calibration", texts]
    assert _prune(tiny_qwen3_dir, tmp_path / "o", *args) == 1
    line = _one_line_error(capsys)
    assert "needs at least 2 distinct texts" in line and "got 1" in line and "--n-train" not in line


def test_ctrl_c_is_one_line_and_leaves_out_as_it_was(tiny_qwen3_dir, tmp_path, capsys, monkeypatch):
    """Ctrl-C during the work ends with one line and the shell's 130, not a traceback through torch's modules."""
    import signal

    from prunetts.pruning import pruner

    def interrupted(*_a, **_k):
        raise KeyboardInterrupt

    monkeypatch.setattr(pruner, "_prune_linears", interrupted)
    out = tmp_path / "o"
    assert _prune(tiny_qwen3_dir, out, "--method", "magnitude", "--sparsity", "0.2") == 128 + signal.SIGINT
    assert _one_line_error(capsys) == f"prunetts: interrupted; --out {out} left as it was" and not out.exists()


def test_prunetts_files_land_before_config_json(tiny_qwen3_dir, tmp_path, monkeypatch):
    """config.json marks a complete checkpoint: the CLI's own files must already be there when it appears."""
    import os

    from prunetts import checkpoint

    seen = {}
    real_replace = os.replace

    def replace(src, dst):
        if os.path.basename(dst) == "config.json":
            seen.update({n: os.path.exists(os.path.join(os.path.dirname(dst), n)) for n in PRUNETTS_FILES})
        return real_replace(src, dst)

    monkeypatch.setattr(checkpoint.os, "replace", replace)
    for method, extra in (("magnitude", ["--sparsity", "0.2"]), ("shortgpt", ["--shortgpt-layers", "1"])):
        seen.clear()
        calibration = ["--calibration", "demo", "--n-samples", "2", "--seqlen", "32"]
        assert _prune(tiny_qwen3_dir, tmp_path / method, "--method", method, *extra, *calibration) == 0
        assert seen == dict.fromkeys(PRUNETTS_FILES, True), method


PRUNETTS_FILES = ("prunetts_prune.json", "prunetts_sparsity.parquet")


@pytest.mark.parametrize(
    "edit,message",
    [
        (lambda c: c.update(num_hidden_layers=c["num_hidden_layers"] + 1), "no tensors of layer 3, but num_hidden"),
        (lambda c: c.update(intermediate_size=c["intermediate_size"] + 8), "config.json implies"),
        (lambda c: c.pop("num_hidden_layers"), "config.json: has no num_hidden_layers >= 1"),
    ],
)
def test_a_config_that_does_not_fit_the_weights_is_one_line_before_any_work(
    tiny_qwen3_dir, tmp_path, capsys, monkeypatch, edit, message
):
    import shutil

    from prunetts import calibration

    model = Path(shutil.copytree(tiny_qwen3_dir, tmp_path / "model"))
    config = json.loads((model / "config.json").read_text())
    config.pop("layer_types", None)
    edit(config)
    (model / "config.json").write_text(json.dumps(config))
    monkeypatch.setattr(calibration, "load_texts", lambda *a, **k: pytest.fail("calibration read before the check"))
    args = ["--method", "wanda", "--sparsity", "0.2", "--calibration", "demo"]
    assert _prune(model, tmp_path / "o", *args) == 1
    line = _one_line_error(capsys)
    assert message in line and "restore the checkpoint's own config.json" in line, line
    assert not (tmp_path / "o").exists()


def test_summary_paths_are_absolute_and_layer_scores_plain_json(tiny_qwen3_dir, tmp_path, monkeypatch):
    import shutil

    shutil.copy(bench_file("c4_demo.jsonl"), tmp_path / "texts.jsonl")
    monkeypatch.chdir(tmp_path)
    args = ["--method", "magnitude", "--allocation", "layerif", "--sparsity", "0.2", "--calibration", "texts.jsonl"]
    args += ["--n-train", "6", "--n-val", "2", "--projection-dim", "0", "--influence-max-len", "16"]
    assert _prune(tiny_qwen3_dir, "o", *args) == 0
    summary = json.loads((tmp_path / "o" / "prunetts_prune.json").read_text())
    assert summary["arguments"]["calibration"] == "texts.jsonl"
    assert summary["resolved"]["calibration"] == str(tmp_path / "texts.jsonl")
    assert summary["resolved"]["influence_train"] is None
    scores = summary["layer_scores"]
    assert sorted(scores) == ["0", "1", "2"] and all(set(v) == {"attention", "mlp"} for v in scores.values())
    # magnitude under uniform reads no texts: the file given is an argument, not a source of what ran
    args = ["--method", "magnitude", "--sparsity", "0.2", "--calibration", "texts.jsonl"]
    assert _prune(tiny_qwen3_dir, "u", *args) == 0
    summary = json.loads((tmp_path / "u" / "prunetts_prune.json").read_text())
    assert summary["arguments"]["calibration"] == "texts.jsonl" and summary["resolved"]["calibration"] is None


def test_unread_calibration_flags_are_warned_not_checked(tiny_qwen3_dir, tmp_path, caplog):
    with caplog.at_level("WARNING"):
        # magnitude with uniform allocation reads no calibration: a missing file is no error, only ignored
        assert _prune(tiny_qwen3_dir, tmp_path / "a", "--method", "magnitude", "--sparsity", "0.2",
                      "--calibration", "/no/such.jsonl") == 0  # fmt: skip
        assert "ignored (not read by magnitude with uniform allocation): --calibration" in caplog.text
        # the demo texts have no field to choose
        assert _prune(tiny_qwen3_dir, tmp_path / "b", "--method", "wanda", "--sparsity", "0.2", "--calibration",
                      "demo", "--text-field", "nosuch", "--n-samples", "2", "--seqlen", "32") == 0  # fmt: skip
        assert "ignored (not read by wanda with uniform allocation): --text-field" in caplog.text


def test_an_ignored_sighup_stays_ignored_and_a_second_sigterm_does_not_cut_the_clean_up_short(tiny_qwen3_dir, tmp_path):
    import os
    import shutil
    import signal
    import time

    from prunetts import checkpoint, cli

    real_write, real_rmtree = checkpoint.Writer._write, shutil.rmtree

    def hangup(self, name, t):  # the SSH session of a `nohup prunetts prune ...` drops
        real_write(self, name, t)
        os.kill(os.getpid(), signal.SIGHUP)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(checkpoint.Writer, "_write", hangup)
        previous = signal.signal(signal.SIGHUP, signal.SIG_IGN)  # what nohup leaves to its child
        try:
            assert _prune(tiny_qwen3_dir, tmp_path / "a", "--method", "magnitude", "--sparsity", "0.2") == 0
            assert signal.getsignal(signal.SIGHUP) is signal.SIG_IGN
        finally:
            signal.signal(signal.SIGHUP, previous)
    assert (tmp_path / "a" / "config.json").is_file()

    def killed(self, name, t):
        real_write(self, name, t)
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(5)

    def rmtree_signalled(path, *a, **k):  # scancel again, as the clean-up starts
        os.kill(os.getpid(), signal.SIGTERM)
        return real_rmtree(path, *a, **k)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(checkpoint.Writer, "_write", killed)
        mp.setattr(cli.shutil, "rmtree", rmtree_signalled)
        with pytest.raises(SystemExit) as e:
            _prune(tiny_qwen3_dir, tmp_path / "b", "--method", "magnitude", "--sparsity", "0.2")
    assert e.value.code == 128 + signal.SIGTERM and not (tmp_path / "b").exists()
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL


def test_numeric_flags_take_their_bounds_and_refuse_what_lies_outside(capsys):
    from prunetts.cli import _parser

    def parse(*flags):
        return _parser()[0].parse_args(["prune", "--model", "m", "--method", "magnitude", "--out", "o", *flags])

    a = parse("--seed", "0", "--n-samples", "1", "--seqlen", "8", "--projection-dim", "0", "--layerif-e1", "0")
    assert (a.seed, a.n_samples, a.seqlen, a.projection_dim, a.layerif_e1) == (0, 1, 8, 0, 0.0)
    assert parse("--layerif-e2", "1", "--owl-lambda", "0.49").layerif_e2 == 1.0
    for flag, value, message in [
        ("--n-samples", "0", "must be >= 1"),
        ("--seqlen", "7", "must be >= 8"),
        ("--seed", "-1", "must be >= 0"),
        ("--owl-lambda", "0", "must be in (0, 0.5)"),
        ("--owl-lambda", "0.5", "must be in (0, 0.5)"),
        ("--owl-m", "0", "must be > 0"),
        ("--owl-m", "inf", "must be > 0"),
        ("--layerif-e1", "1.01", "must be in [0, 1]"),
    ]:
        with pytest.raises(SystemExit):
            parse(flag, value)
        assert f"{value} {message}" in capsys.readouterr().err, (flag, value)


def test_flags_a_method_reads_are_not_called_ignored(tmp_path):
    from prunetts.cli import _check, _ignored, _parser

    def ignored(*flags):
        ap, prune = _parser()
        return _ignored(ap.parse_args(["prune", "--model", "m", "--out", "o", *flags]), prune)

    window = ["--calibration", "demo", "--n-samples", "4", "--seqlen", "16", "--batch-size", "2"]
    assert ignored("--method", "shortgpt", "--shortgpt-layers", "1", *window) == []  # the capture reads them
    assert ignored("--method", "magnitude", "--sparsity", "0.2", *window) == [
        "--calibration", "--n-samples", "--seqlen", "--batch-size"
    ]  # fmt: skip
    texts = str(tmp_path / "t.jsonl")
    # --text-field names the field of the influence files when --influence-text-field is not given
    layerif = ["--method", "magnitude", "--allocation", "layerif", "--sparsity", "0.2", "--calibration", "demo"]
    # (the calibration texts are not read: the influence file is the training pool)
    assert ignored(*layerif, "--influence-train", texts, "--text-field", "body") == ["--calibration"]
    assert ignored(*layerif, "--influence-train", texts, "--influence-text-field", "b", "--text-field", "body") == [
        "--calibration",
        "--text-field",
    ]

    out = tmp_path / "out"
    out.mkdir()
    for name in ("a", "b", "c"):
        (out / name).write_text("")
    a = _parser()[0].parse_args(
        ["prune", "--model", "m", "--method", "magnitude", "--sparsity", "0.2", "--out", str(out)]
    )
    assert _check(a).endswith("(holds a, b, c); choose a new directory")
    (out / "d").write_text("")
    assert _check(a).endswith("(holds a, b, c and 1 more); choose a new directory")


def test_an_allocation_below_the_sparsity_is_reported(tiny_qwen3_dir, tmp_path, caplog, monkeypatch):
    """E.g. LayerIF capping layers at 1.0: the allocation itself misses --sparsity, and the run says so."""
    from prunetts.pruning import allocation

    real = allocation.for_variant
    monkeypatch.setattr(allocation, "for_variant", lambda *a: {k: 0.95 * s for k, s in real(*a).items()})
    with caplog.at_level("WARNING"):
        assert _prune(tiny_qwen3_dir, tmp_path / "o", "--method", "magnitude", "--sparsity", "0.3") == 0
    assert "the allocation's target over the prunable linears is 0.2850, below --sparsity 0.3" in caplog.text


def test_a_shortfall_within_the_row_rounding_and_one_percent_is_not_reported(caplog):
    from prunetts.cli import _warn_if_short

    shapes = {"model.layers.0.mlp.up_proj.weight": (100, 100)}  # rounding may leave one weight per row: 1 %

    def warned(n_zero):
        record = dict(layer=0, module="mlp.up_proj", numel=10_000, n_zero=n_zero, target_sparsity=0.5)
        caplog.clear()
        with caplog.at_level("WARNING"):
            _warn_if_short([record], shapes, n_zero / 10_000, 0.5)
        return "below the target" in caplog.text

    assert not warned(4850) and warned(4750)


def test_a_hangup_ends_the_run_through_the_clean_up_as_sigterm_does(tiny_qwen3_dir, tmp_path):
    import os
    import signal

    from prunetts import checkpoint

    real_add, real_stop, hangups, during_stop = checkpoint.Writer.add, checkpoint.Writer._stop, [], []

    def hangup(self, tensors):  # the SSH session of a `prunetts prune ...` (without nohup) drops mid-write
        real_add(self, tensors)
        os.kill(os.getpid(), signal.SIGHUP)  # from the main thread: handled right here, deterministically

    def stop(self):  # the writer's clean-up (waiting for its write in progress): further signals are ignored
        during_stop.append({sig: signal.getsignal(sig) for sig in (signal.SIGHUP, signal.SIGTERM)})
        os.kill(os.getpid(), signal.SIGTERM)  # scancel on top of the hangup
        return real_stop(self)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(checkpoint.Writer, "add", hangup)
        mp.setattr(checkpoint.Writer, "_stop", stop)
        previous = signal.signal(signal.SIGHUP, lambda *a: hangups.append(a))  # not ignored: prunetts takes it over
        try:
            with pytest.raises(SystemExit) as e:
                _prune(tiny_qwen3_dir, tmp_path / "c", "--method", "magnitude", "--sparsity", "0.2")
            assert signal.getsignal(signal.SIGHUP) is not signal.SIG_IGN  # the handler it found is back
        finally:
            signal.signal(signal.SIGHUP, previous)
    assert e.value.code == 128 + signal.SIGHUP and not (tmp_path / "c").exists() and not hangups
    assert during_stop == [{signal.SIGHUP: signal.SIG_IGN, signal.SIGTERM: signal.SIG_IGN}]


def test_a_disk_without_room_for_the_output_is_one_line_before_any_work(tiny_qwen3_dir, tmp_path, capsys, monkeypatch):
    """The pruned checkpoint's size is known from the source's headers (ShortGPT's without the layers it removes):
    a disk without room for it stops the run before the calibration texts are read, and leaves no --out."""
    import shutil
    from collections import namedtuple

    from prunetts import calibration, checkpoint
    from prunetts.checkpoint import Reader, byte_size

    reader = Reader(tiny_qwen3_dir)
    whole = reader.tensor_bytes(list(reader.files))
    one_layer = reader.tensor_bytes(reader.layer_names(0))
    usage, real = namedtuple("usage", "total used free"), shutil.disk_usage
    free = {"bytes": whole - 1}
    monkeypatch.setattr(checkpoint.shutil, "disk_usage", lambda p: usage(real(p).total, 0, free["bytes"]))

    def never(*_a, **_k):
        raise AssertionError("calibration read before the disk check")

    real_load = calibration.load_texts
    monkeypatch.setattr(calibration, "load_texts", never)
    c4 = str(bench_file("c4_demo.jsonl"))
    out = tmp_path / "o"
    wanda = ["--method", "wanda", "--sparsity", "0.2", "--calibration", c4, "--seqlen", "64"]
    assert _prune(tiny_qwen3_dir, out, *wanda) == 1
    assert _one_line_error(capsys) == (
        f"prunetts: error: --out {out}: not enough disk space for the checkpoint: its tensors take "
        f"{byte_size(whole)} and {byte_size(whole - 1)} are free there; free some space or write it elsewhere"
    )
    assert not out.exists()
    # ShortGPT writes one layer less here: that much room is enough, one byte less is not
    shortgpt = ["--method", "shortgpt", "--shortgpt-layers", "1", "--calibration", c4, "--seqlen", "64"]
    free["bytes"] = whole - one_layer - 1
    assert _prune(tiny_qwen3_dir, out, *shortgpt) == 1
    assert f"its tensors take {byte_size(whole - one_layer)} and" in _one_line_error(capsys)
    free["bytes"] = whole - one_layer
    monkeypatch.setattr(calibration, "load_texts", real_load)
    assert _prune(tiny_qwen3_dir, out, *shortgpt) == 0
    assert byte_size(1) == "1 kB" and byte_size(3_456_789) == "3.5 MB" and byte_size(15_262_000_000) == "15.26 GB"


def test_hub_text_sources_are_taken_by_name_with_or_without_a_revision(tmp_path, monkeypatch):
    """'s1k' and 'c4' (either @<commit sha>) are text sources of every text flag; another name is refused."""
    from prunetts.cli import _check, _parser

    monkeypatch.chdir(tmp_path)  # no local file of these names

    def check(*flags):
        return _check(_parser()[0].parse_args(["prune", "--model", "org/name", "--out", "o", *flags]))

    sha = "0123456789abcdef0123456789abcdef01234567"
    assert check("--method", "wanda", "--sparsity", "0.2", "--calibration", "s1k") is None
    layerif = ["--method", "magnitude", "--allocation", "layerif", "--sparsity", "0.2"]
    assert check(*layerif, "--influence-train", f"s1k@{sha}", "--influence-val", f"c4@{sha}") is None
    assert check("--method", "wanda", "--sparsity", "0.2", "--calibration", "s2k") == (
        "--calibration s2k: not 'c4', 's1k' (either @<commit sha>), 'demo' or an existing file"
    )


def test_a_sparsity_that_rounds_to_nothing_is_a_warning(tiny_qwen3_dir, tmp_path, caplog):
    """--sparsity 0.0001 on the tiny model's matrices is floor(n x s) = 0 weights everywhere: the run succeeds (the
    user asked for it) but says that nothing was pruned; an ordinary sparsity does not."""
    assert _prune(tiny_qwen3_dir, tmp_path / "nothing", "--method", "magnitude", "--sparsity", "0.0001") == 0
    assert "nothing was pruned: a target of 0.0001 rounds down to 0 weights" in caplog.text
    caplog.clear()
    assert _prune(tiny_qwen3_dir, tmp_path / "some", "--method", "magnitude", "--sparsity", "0.2") == 0
    assert "nothing was pruned" not in caplog.text
