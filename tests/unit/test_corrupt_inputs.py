"""Truncated or garbled inputs (Parquet artifacts, safetensors, JSON Lines, tokenizer and config files) give one line
that names the file and the fix, never a decoder's traceback and never silently different data. The workflow-level
half (a rerun after deleting a corrupt artifact regenerates it) is in tests/workflow/test_reliability_workflow.py."""

from __future__ import annotations

import random
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from prunetts import artifacts
from prunetts.checkpoint import CheckpointError, Reader
from prunetts.models import ModelError, load_model, load_tokenizer
from prunetts.records import InputFileError, read_records


def _one_line(err: Exception, path: Path, *fix: str) -> str:
    text = str(err)
    assert "\n" not in text, text
    assert str(path) in text, text
    for word in fix:
        assert word in text, text
    return text


@pytest.fixture()
def grades_file(tmp_path):
    rows = [
        dict(
            model="m",
            variant="dense",
            bench="demo",
            seed=7,
            budget=b,
            impl_version=1,
            problem_id=f"p{i}",
            thinking_tokens=i,
            hit_budget=bool(i % 2),
            answer_stopped=True,
            gold=str(i % 10),
            extracted=str(i % 7),
            verdict="wrong",
            correct=False,
        )
        for i in range(200)
        for b in (16, 64)
    ]
    return artifacts.write("grades", rows, tmp_path / "grades.parquet")


def test_truncated_and_garbled_parquet_is_named_never_silently_read(grades_file, tmp_path):
    data = grades_file.read_bytes()
    original = artifacts.read("grades", grades_file)
    rng = random.Random(7)
    outcomes = {"error": 0, "identical": 0}
    for trial in range(150):
        b = bytearray(data)
        if trial % 3 == 0:
            b = b[: rng.randrange(0, len(b))]  # truncated (a copy cut short, a full disk)
        elif trial % 3 == 1:
            for _ in range(rng.randint(1, 4)):  # bit rot
                b[rng.randrange(len(b))] ^= 1 << rng.randrange(8)
        else:
            i = rng.randrange(len(b))  # a garbled block
            b[i : i + 64] = bytes(rng.randrange(256) for _ in range(len(b[i : i + 64])))
        bad = tmp_path / f"bad{trial}.parquet"
        bad.write_bytes(bytes(b))
        try:
            got = artifacts.read("grades", bad)
        except artifacts.ArtifactError as e:
            _one_line(e, bad, "delete it and rerun")
            outcomes["error"] += 1
        else:  # the damage hit bytes that do not carry data (e.g. statistics): the content must be unchanged
            assert got.equals(original), f"trial {trial}: garbled file read back as different data"
            outcomes["identical"] += 1
    assert outcomes["error"] >= 130, outcomes


@pytest.mark.parametrize("content", [b"", b"not a parquet file\n", b"PAR1" + b"\0" * 100])
def test_parquet_that_is_not_parquet(tmp_path, content):
    bad = tmp_path / "x.parquet"
    bad.write_bytes(content)
    with pytest.raises(artifacts.ArtifactError) as err:
        artifacts.read("grades", bad)
    _one_line(err.value, bad, "unreadable grades artifact", "delete it and rerun")


@pytest.fixture()
def demo_copy(demo_model_dir, tmp_path):
    return Path(shutil.copytree(demo_model_dir, tmp_path / "ckpt"))


def test_truncated_safetensors(demo_copy):
    weights = demo_copy / "model.safetensors"
    data = weights.read_bytes()
    weights.write_bytes(data[: len(data) // 2])
    with pytest.raises(ModelError) as err:
        load_model(str(demo_copy), dtype="float32", device="cpu")
    _one_line(err.value, weights, "truncated", "delete its directory and rerun")
    with pytest.raises(CheckpointError) as err:
        Reader(demo_copy)  # the streaming reader of capture / prune
    _one_line(err.value, weights, "truncated")


def test_an_index_placing_a_tensor_in_the_wrong_shard_is_named(tmp_path):
    """A sharded checkpoint whose index names a shard that does not hold the tensor (a shard from another download)."""
    import json

    from tests.conftest import build_tiny

    build_tiny("qwen3", tmp_path / "m", max_shard_size="40KB")
    index_file = tmp_path / "m" / "model.safetensors.index.json"
    index = json.loads(index_file.read_text())
    files = sorted(set(index["weight_map"].values()))
    name = next(n for n, f in index["weight_map"].items() if f == files[0])
    index["weight_map"][name] = files[1]
    index_file.write_text(json.dumps(index))
    reader = Reader(tmp_path / "m")
    with pytest.raises(CheckpointError) as err:
        reader.layout([name])
    _one_line(err.value, tmp_path / "m" / files[1], f"has no tensor {name}", "re-download it")


def test_a_tensor_the_index_does_not_list_is_named_before_any_work(tmp_path):
    """A shard holding a tensor its index leaves out: transformers and the streaming reader load by the index, so
    the tensor would be missing from the model. The header checks (config check, CLI, allocation) name it at once;
    before, calibration ran and layer 2's load failed with a multi-line state_dict traceback."""
    import json

    from prunetts import cli
    from prunetts.checkpoint import tensor_shapes
    from tests.conftest import build_tiny

    build_tiny("llama", tmp_path / "m", max_shard_size="40KB")
    index_file = tmp_path / "m" / "model.safetensors.index.json"
    index = json.loads(index_file.read_text())
    name = "model.layers.1.mlp.up_proj.weight"
    shard = index["weight_map"].pop(name)
    index_file.write_text(json.dumps(index))
    with pytest.raises(CheckpointError) as err:
        tensor_shapes(tmp_path / "m")
    _one_line(err.value, tmp_path / "m" / shard, f"holds {name}", "does not list", "restore")
    out = tmp_path / "out"
    args = ["prune", "--model", str(tmp_path / "m"), "--method", "magnitude", "--sparsity", "0.2", "--out", str(out)]
    assert cli.main(args) == 1
    assert not out.exists()


def test_a_shard_the_index_names_but_that_is_missing_is_named(tmp_path):
    """An offline hub snapshot holding the index and tokenizer but not the weights (only the tokenizer was fetched):
    the fix is to download, not to delete a file that is not there."""
    from tests.conftest import build_tiny

    build_tiny("qwen3", tmp_path / "m", max_shard_size="40KB")
    shard = sorted((tmp_path / "m").glob("model-*.safetensors"))[-1]
    shard.unlink()
    with pytest.raises(CheckpointError) as err:
        Reader(tmp_path / "m")
    _one_line(err.value, tmp_path / "m", shard.name, "named by model.safetensors.index.json missing", "download")


def test_model_safetensors_wins_over_an_index_as_in_transformers(tmp_path):
    """A directory holding both (a stale index beside a single file): the weights transformers would load, so the
    model pruned is the model evaluated."""
    import torch
    from transformers import AutoModelForCausalLM

    from tests.conftest import build_tiny

    build_tiny("qwen3", tmp_path / "single")
    build_tiny("qwen3", tmp_path / "sharded", max_shard_size="40KB", seed=1)
    both = tmp_path / "both"
    shutil.copytree(tmp_path / "sharded", both)
    shutil.copy(tmp_path / "single" / "model.safetensors", both / "model.safetensors")
    name = "model.layers.0.mlp.down_proj.weight"
    ours = Reader(both).load([name])[name]
    theirs = AutoModelForCausalLM.from_pretrained(both).state_dict()[name]
    assert torch.equal(ours, theirs) and torch.equal(ours, Reader(tmp_path / "single").load([name])[name])


# JSON built to break the decoder rather than the format: nesting past the recursion limit, an infinite offset
_HOSTILE_HEADERS = {
    "header-deep": b"[" * 100_000 + b"]" * 100_000,
    "header-infinity": b'{"w": {"dtype": "F32", "shape": [1], "data_offsets": [0, Infinity]}}',
}


@pytest.mark.parametrize("damage", ["header-length", "header-json", "empty", *_HOSTILE_HEADERS])
def test_garbled_safetensors_header(demo_copy, damage):
    weights = demo_copy / "model.safetensors"
    data = bytearray(weights.read_bytes())
    if damage == "header-length":
        data[:8] = (2**40).to_bytes(8, "little")
    elif damage == "header-json":
        data[8:40] = b"#" * 32
    elif damage in _HOSTILE_HEADERS:
        header = _HOSTILE_HEADERS[damage]
        data = bytearray(len(header).to_bytes(8, "little") + header)
    else:
        data = bytearray()
    weights.write_bytes(bytes(data))
    with pytest.raises(ModelError) as err:
        load_model(str(demo_copy), dtype="float32", device="cpu")
    _one_line(err.value, weights, "not a readable safetensors file")


@pytest.mark.parametrize("name", ["tokenizer.json", "tokenizer_config.json", "config.json"])
def test_truncated_tokenizer_and_config_files(demo_copy, name):
    f = demo_copy / name
    text = f.read_bytes()
    f.write_bytes(text[: len(text) // 3])
    with pytest.raises(ModelError) as err:
        load_tokenizer(str(demo_copy))
    _one_line(err.value, f, "not valid JSON", "restore it")


def test_json_nested_past_the_recursion_limit_is_one_line(demo_copy):
    """Adversarial nesting makes json.loads raise RecursionError, no ValueError: named like any garbled file by the
    loaders (checkpoint check, the CLI's Reader) and skipped by the config check's context lookup."""
    from prunetts.config import _local_config

    config = demo_copy / "config.json"
    config.write_text("[" * 100_000 + "]" * 100_000)
    with pytest.raises(ModelError) as err:
        load_tokenizer(str(demo_copy))
    _one_line(err.value, config, "not valid JSON", "restore it")
    with pytest.raises(CheckpointError) as err:
        Reader(demo_copy)
    _one_line(err.value, config, "unreadable")
    assert _local_config(str(demo_copy)) is None


def test_garbled_tokenizer_that_is_still_json(demo_copy):
    """Valid JSON that the tokenizers library cannot use: named by the checkpoint directory, one line."""
    (demo_copy / "tokenizer.json").write_text('{"model": {"type": "NoSuchModel"}}')
    with pytest.raises(ModelError) as err:
        load_tokenizer(str(demo_copy))
    _one_line(err.value, demo_copy, "cannot load")


@pytest.mark.parametrize(
    "config",
    [
        '{"model_type": "no_such_arch", "num_hidden_layers": 6}',
        '{"model_type": "qwen3", "hidden_size": "x", "num_hidden_layers": 6}',
    ],
)
def test_config_that_is_json_but_unusable_is_one_line_on_every_loading_path(demo_copy, config):
    """prunable_modules (allocate), the layer-by-layer runner (capture, prune), the transformers backend and the vLLM
    backend (before the engine is even imported) all load the config through models.load_config."""
    from prunetts.checkpoint import Reader
    from prunetts.generation.run import make_backend
    from prunetts.layerwise import LayerRunner
    from prunetts.models import prunable_modules

    tok = load_tokenizer(str(demo_copy))
    (demo_copy / "config.json").write_text(config)
    vllm = {"backend": "vllm", "temperature": 0.6}
    transformers = {"temperature": 0.6, "device": "cpu", "dtype": "float32"}
    for call in (
        lambda: prunable_modules(str(demo_copy)),
        lambda: LayerRunner(Reader(demo_copy), "cpu", "float32"),
        lambda: make_backend(str(demo_copy), tok, vllm, {}, progress=False),
        lambda: make_backend(str(demo_copy), tok, transformers, {}, progress=False),
    ):
        with pytest.raises(ModelError) as err:
            call()
        _one_line(err.value, demo_copy, "cannot load", "restore it")


def _jsonl(tmp_path, lines):
    path = tmp_path / "data.jsonl"
    path.write_bytes(b"".join(lines))
    return path


def test_truncated_json_lines_names_the_line(tmp_path):
    good = [b'{"problem": "1+1", "answer": "2"}\n'] * 3
    path = _jsonl(tmp_path, [*good, b'{"problem": "2+2", "ans'])  # cut inside the 4th line
    with pytest.raises(InputFileError) as err:
        read_records(path)
    _one_line(err.value, path, "line 4 is not valid JSON", "truncated?")


def test_garbled_json_lines(tmp_path):
    path = _jsonl(tmp_path, [b'{"a": 1}\n', b"\xff\xfe\x00garbage\n"])
    with pytest.raises(InputFileError) as err:
        read_records(path)
    _one_line(err.value, path, "not UTF-8")
    path = _jsonl(tmp_path, [b'{"a": 1}\n', b"[1, 2]\n"])
    with pytest.raises(InputFileError) as err:
        read_records(path)
    _one_line(err.value, path, "line 2", "not an object")


def test_blank_lines_in_json_lines_are_skipped_and_a_json_list_must_hold_objects(tmp_path):
    """Blank lines (a trailing empty line, a blank between records) are no records and no error; a .json file must
    be a list of objects: a list of strings is one line naming the file, not a later crash on r["text"]."""
    path = _jsonl(tmp_path, [b'{"a": 1}\n', b"\n", b"  \n", b'{"a": 2}\n', b"\n"])
    assert read_records(path) == [{"a": 1}, {"a": 2}]
    path = tmp_path / "l.json"
    path.write_text('["a", "b"]')
    with pytest.raises(InputFileError) as err:
        read_records(path)
    _one_line(err.value, path, "must hold a JSON list of objects")


def test_benchmark_and_calibration_sources_use_the_same_reader(tmp_path):
    from prunetts import benchmarks
    from prunetts.calibration import load_texts

    path = _jsonl(tmp_path, [b'{"text": "a"}\n', b'{"text": '])
    with pytest.raises(InputFileError) as err:
        load_texts(str(path))
    _one_line(err.value, path, "line 2")
    with pytest.raises(InputFileError) as err:
        benchmarks.load("math500", str(path))
    _one_line(err.value, path, "line 2")


def test_a_job_reports_a_corrupt_input_in_one_line_without_traceback(grades_file, tmp_path):
    """What Snakemake shows for a job that meets a corrupt artifact: the job's stderr is one line, exit status 1, and
    the same line ends the job's log."""
    bad = tmp_path / "bad.parquet"
    bad.write_bytes(grades_file.read_bytes()[:100])
    log = tmp_path / "job.log"
    code = (
        "from prunetts import artifacts, jobs\n"
        f"with jobs.job_logging({str(log)!r}):\n"
        f"    artifacts.read('grades', {str(bad)!r})\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines() == [proc.stderr.strip()], proc.stderr
    assert proc.stderr.startswith(f"prunetts error: {bad}: unreadable grades artifact")
    assert "Traceback" not in proc.stderr
    assert "delete it and rerun" in log.read_text().splitlines()[-1]


def test_a_checkpoint_killed_while_copying_its_side_files_has_no_config(tmp_path, monkeypatch):
    """config.json is written last (atomically): a pruned checkpoint missing its chat template or tokenizer never
    looks complete to transformers or to check_local_checkpoint."""
    from prunetts.models import prunable_modules
    from prunetts.pruning import pruner
    from prunetts.pruning.allocation import uniform
    from tests.conftest import DEMO_MODEL

    copies = []

    def dies_on_the_second(src, dst, *a, **k):
        copies.append(src)
        if len(copies) == 2:
            raise KeyboardInterrupt  # as a kill would stop it
        return shutil.copy2(src, dst)

    monkeypatch.setattr(shutil, "copyfile", dies_on_the_second)
    allocation = uniform(prunable_modules(str(DEMO_MODEL)), 0.5)
    with pytest.raises(KeyboardInterrupt):
        pruner.prune_checkpoint(str(DEMO_MODEL), tmp_path / "out", "magnitude", allocation, progress=False)
    assert len(copies) == 2 and not (tmp_path / "out" / "config.json").exists()


def test_layers_beyond_the_configs_count_and_unwritable_dtypes_are_named(tmp_path):
    """Tensors of layers the config does not count (e.g. multi-token-prediction layers) would be dropped from the
    pruned checkpoint, and a dtype the writer cannot copy would fail mid-write: both are one line up front."""
    import json

    from prunetts.checkpoint import _nbytes
    from tests.conftest import build_tiny

    ckpt = build_tiny("qwen3", tmp_path / "m", layers=3)
    cfg = json.loads((ckpt / "config.json").read_text())
    cfg["num_hidden_layers"] = 2
    (ckpt / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(CheckpointError) as err:
        Reader(ckpt)
    _one_line(err.value, ckpt, "tensors of layer 2, beyond num_hidden_layers = 2")
    with pytest.raises(CheckpointError, match="dtype F8_E8M0: not one prunetts writes"):
        _nbytes("F8_E8M0", [4])


@pytest.mark.parametrize("key,delta", [("intermediate_size", 8), ("num_hidden_layers", -1)])
def test_config_of_another_size_than_the_weights_is_one_line_before_loading(demo_copy, key, delta, monkeypatch):
    """transformers would fill a tensor the weights lack with random values and only warn (a layer dropped from the
    config) or raise a long traceback (another size); the runner (capture, prune) and load_model (influence,
    generation) stop with one line first. The demo model ties its lm_head to the embedding: that is no gap."""
    import json

    from transformers import AutoModelForCausalLM

    from prunetts.checkpoint import CheckpointError, Reader
    from prunetts.layerwise import LayerRunner
    from prunetts.models import load_model

    LayerRunner(Reader(demo_copy), "cpu", "float32")  # the intact tied checkpoint passes
    config = json.loads((demo_copy / "config.json").read_text())
    config[key] += delta
    config.pop("layer_types", None)
    (demo_copy / "config.json").write_text(json.dumps(config))
    monkeypatch.setattr(AutoModelForCausalLM, "from_pretrained", lambda *a, **k: pytest.fail("weights read"))
    for call in (lambda: LayerRunner(Reader(demo_copy), "cpu", "float32"), lambda: load_model(str(demo_copy))):
        with pytest.raises(CheckpointError) as err:
            call()
        _one_line(err.value, demo_copy, "config.json", "does not match the weights" if delta > 0 else "layer")
        assert ("implies [264, 96]" if delta > 0 else "5") in str(err.value)


def test_a_file_short_by_one_byte_or_missing_one_tensor_or_holding_old_rotary_buffers(tmp_path):
    """A safetensors file one byte short is truncated (not only one cut before its data); a checkpoint without one
    tensor its config implies is one line naming it; old Llama checkpoints' rotary_emb.inv_freq buffers are skipped
    by the reader and the weight check rather than loaded into a layer or refused."""
    import torch
    from safetensors.torch import load_file

    from prunetts.checkpoint import read_header, write_safetensors
    from prunetts.models import check_weights, meta_model
    from tests.conftest import build_tiny

    f = tmp_path / "t.safetensors"
    write_safetensors(f, {"a": torch.arange(4.0)})
    f.write_bytes(f.read_bytes()[:-1])
    with pytest.raises(CheckpointError, match="truncated"):
        read_header(f)

    ckpt = build_tiny("llama", tmp_path / "m", layers=2)
    weights = {k: v.clone() for k, v in load_file(ckpt / "model.safetensors").items()}  # not views of the file
    inv_freq = "model.layers.0.self_attn.rotary_emb.inv_freq"
    write_safetensors(ckpt / "model.safetensors", {**weights, inv_freq: torch.ones(4)})
    reader = Reader(ckpt)
    assert inv_freq not in reader.layer_names(0) and reader.layer_names(0)
    _, model, _ = meta_model(str(ckpt))
    check_weights(ckpt, model)
    del weights["model.norm.weight"]
    write_safetensors(ckpt / "model.safetensors", weights)
    with pytest.raises(CheckpointError) as err:
        check_weights(ckpt, model)
    _one_line(err.value, ckpt, "no tensor model.norm.weight")


def test_looks_local_tells_local_paths_from_hub_ids(tmp_path, monkeypatch):
    from prunetts.checkpoint import looks_local

    monkeypatch.chdir(tmp_path)
    (tmp_path / "models").mkdir()
    assert [looks_local(p) for p in ("/abs/x", "./x", "~/x", "a/b/c", "models/lama", "Qwen/Qwen3-8B", "gpt2")] == [
        True,
        True,
        True,
        True,
        True,
        False,
        False,
    ]
    # a Windows-style path has no '/' but is no hub id either (a hub id cannot hold a backslash)
    assert looks_local("models\\lama") and looks_local("C:\\models\\lama")


def test_a_revision_for_a_local_directory_is_refused_and_a_local_path_with_an_at_is_never_split(tmp_path):
    from prunetts.checkpoint import resolve, split_ref

    d = tmp_path / "qwen@v2"
    d.mkdir()
    with pytest.raises(CheckpointError, match="revision 'main' given for a local directory"):
        resolve(d, "main")
    assert resolve(d) == d
    assert split_ref(str(d)) == (str(d), None)
    assert split_ref("org/name@" + "a" * 40) == ("org/name", "a" * 40)
    # the revision follows the last '@' (model_ref's inverse): a missing local path holding an '@' keeps it
    assert split_ref("models/m@v2@" + "a" * 40) == ("models/m@v2", "a" * 40)
    assert split_ref("org/name@") == ("org/name", None) and split_ref("org/name") == ("org/name", None)


def test_a_record_limit_gives_the_first_records_in_every_format(tmp_path):
    """``read_records(limit=...)`` (the config check's first-record look) gives the first records of every format,
    a JSON list's too, and none of an empty Parquet file."""
    import csv
    import json

    import pyarrow as pa
    import pyarrow.parquet as pq

    texts = ["a", "b", "c"]
    (tmp_path / "t.jsonl").write_text("".join(json.dumps({"text": t}) + "\n" for t in texts))
    (tmp_path / "t.json").write_text(json.dumps([{"text": t} for t in texts]))
    pq.write_table(pa.table({"text": texts}), tmp_path / "t.parquet")
    with (tmp_path / "t.csv").open("w", newline="") as f:
        csv.writer(f).writerows([["text"], *([t] for t in texts)])
    for suffix in ("jsonl", "json", "parquet", "csv"):
        path = tmp_path / f"t.{suffix}"
        assert read_records(path, limit=1) == [{"text": "a"}], suffix
        assert read_records(path, limit=2) == [{"text": "a"}, {"text": "b"}], suffix
        assert len(read_records(path)) == 3, suffix
    pq.write_table(pa.table({"text": pa.array([], pa.string())}), tmp_path / "empty.parquet")
    assert read_records(tmp_path / "empty.parquet", limit=1) == []


@pytest.mark.parametrize("bad", ["vocab", -1])
def test_a_calibration_token_outside_the_embedding_table_is_one_line_before_any_layer(demo_model_dir, tmp_path, bad):
    """Windows tokenized for another model (a larger vocabulary) reach the embedding lookup, whose bare IndexError
    would come from inside torch: the capture and the sequential prune name the window and the table first."""
    import json

    from prunetts import capture as cap
    from prunetts.calibration import CalibrationError
    from prunetts.pruning.pruner import prune_checkpoint

    rows = json.loads((demo_model_dir / "config.json").read_text())["vocab_size"]
    windows = [[5] * 8, [5] * 7 + [rows if bad == "vocab" else bad]]
    for run in (
        lambda: cap.capture(str(demo_model_dir), windows, 8, "cpu", "float32", progress=False),
        lambda: prune_checkpoint(
            str(demo_model_dir), str(tmp_path / "out"), "wanda", {}, windows=windows, device="cpu", progress=False
        ),
    ):
        with pytest.raises(CalibrationError) as err:
            run()
        text = _one_line(
            err.value, demo_model_dir, "calibration window 1", f"token id {windows[1][-1]}", "another model"
        )
        assert f"({rows} rows)" in text
    assert not (tmp_path / "out").exists()  # nothing written before the check
