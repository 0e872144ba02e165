"""Security properties (README "Threat model"): weights only through safetensors, no unpickling, trust_remote_code
off unless a model's config entry turns it on, no eval/exec of anything, model names cannot leave results/.
The grader's handling of model text that looks like code is fuzzed in test_grading_fuzz.py."""

from __future__ import annotations

import ast
import json
import pickle
import shutil
from pathlib import Path

import pytest

from prunetts.checkpoint import CheckpointError, Reader
from prunetts.config import load_schema, schema_problems
from prunetts.models import ModelError, load_model, load_tokenizer, prunable_modules

REPO = Path(__file__).resolve().parents[2]
LIBRARY = sorted((REPO / "workflow" / "prunetts").rglob("*.py")) + sorted((REPO / "scripts").glob("*.py"))


class _Marker:
    """Unpickling this writes a file: proof that a pickle was (not) loaded."""

    def __init__(self, path):
        self.path = str(path)

    def __reduce__(self):
        return (Path(self.path).write_text, ("unpickled",))


def _calls(tree):
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            f = node.func
            if isinstance(f, ast.Name):
                yield node, f.id
            elif isinstance(f, ast.Attribute):
                yield node, f"{ast.unparse(f.value)}.{f.attr}"


def test_the_library_never_unpickles_evaluates_or_trusts_remote_code():
    """A static scan of workflow/prunetts and scripts/ (bench/ is left out on purpose: bench/prune.py torch.loads a
    mask file its own child process wrote a moment earlier)."""
    banned_modules = {"pickle", "cPickle", "dill", "joblib", "marshal", "shelve"}
    problems = []
    for path in LIBRARY:
        tree = ast.parse(path.read_text(), str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import | ast.ImportFrom):
                names = [a.name for a in node.names] + ([node.module] if isinstance(node, ast.ImportFrom) else [])
                if banned_modules & {str(n).split(".")[0] for n in names}:
                    problems.append(f"{path}:{node.lineno} imports a pickle-like module")
        for node, name in _calls(tree):
            where = f"{path.relative_to(REPO)}:{node.lineno}"
            if name in ("eval", "exec", "compile", "torch.load", "yaml.load", "yaml.unsafe_load", "np.load"):
                problems.append(f"{where} calls {name}")
            for kw in node.keywords:
                if kw.arg == "trust_remote_code" and isinstance(kw.value, ast.Constant) and kw.value.value is True:
                    problems.append(f"{where} hard-codes trust_remote_code=True")
                if kw.arg == "use_safetensors" and isinstance(kw.value, ast.Constant) and kw.value.value is False:
                    problems.append(f"{where} allows non-safetensors weights")
    assert not problems, problems
    loader = (REPO / "workflow" / "prunetts" / "models.py").read_text()
    assert "use_safetensors=True" in loader


@pytest.fixture()
def pickle_only_checkpoint(demo_model_dir, tmp_path):
    """The demo checkpoint with its weights replaced by a pickle whose loading would write a marker file."""
    ckpt = Path(shutil.copytree(demo_model_dir, tmp_path / "ckpt"))
    (ckpt / "model.safetensors").unlink()
    marker = tmp_path / "UNPICKLED"
    (ckpt / "pytorch_model.bin").write_bytes(pickle.dumps(_Marker(marker)))
    return ckpt, marker


def test_a_pickle_only_checkpoint_is_refused_with_one_line_and_never_unpickled(pickle_only_checkpoint):
    ckpt, marker = pickle_only_checkpoint
    with pytest.raises(ModelError) as err:
        load_model(str(ckpt), dtype="float32", device="cpu")
    assert "no *.safetensors" in str(err.value) and str(ckpt) in str(err.value) and "\n" not in str(err.value)
    with pytest.raises(CheckpointError, match="only pickled weights"):
        Reader(ckpt)  # capture, prune, influence stream through this reader
    assert not marker.exists()


def test_safetensors_is_used_even_next_to_a_pickle(pickle_only_checkpoint, demo_model_dir):
    ckpt, marker = pickle_only_checkpoint
    shutil.copy(demo_model_dir / "model.safetensors", ckpt / "model.safetensors")
    model = load_model(str(ckpt), dtype="float32", device="cpu")
    assert model.config.num_hidden_layers == 6 and not marker.exists()


@pytest.fixture()
def remote_code_checkpoint(demo_model_dir, tmp_path):
    """A checkpoint whose config points at its own Python module; importing that module writes a marker file."""
    ckpt = Path(shutil.copytree(demo_model_dir, tmp_path / "ckpt"))
    marker = tmp_path / "REMOTE_CODE_RAN"
    cfg = json.loads((ckpt / "config.json").read_text())
    cfg.update(model_type="evil", auto_map={"AutoConfig": "evil.EvilConfig", "AutoModelForCausalLM": "evil.Evil"})
    (ckpt / "config.json").write_text(json.dumps(cfg))
    tok = json.loads((ckpt / "tokenizer_config.json").read_text())
    tok["auto_map"] = {"AutoTokenizer": ["evil.EvilTokenizer", None]}
    (ckpt / "tokenizer_config.json").write_text(json.dumps(tok))
    (ckpt / "evil.py").write_text(f"open({str(marker)!r}, 'w').write('ran')\n")
    return ckpt, marker


def test_remote_code_is_off_unless_the_config_turns_it_on(remote_code_checkpoint):
    ckpt, marker = remote_code_checkpoint
    for load in (
        lambda: load_model(str(ckpt), dtype="float32", device="cpu"),
        lambda: prunable_modules(str(ckpt)),
    ):
        with pytest.raises(ModelError) as err:
            load()
        assert "trust_remote_code" in str(err.value) and "\n" not in str(err.value)
    try:
        load_tokenizer(str(ckpt))  # the tokenizer class is built in; its auto_map is then simply not followed
    except ModelError as e:
        assert "trust_remote_code" in str(e)
    assert not marker.exists()
    # turned on (models.<name>.trust_remote_code, CLI --trust-remote-code), the checkpoint's code runs: the flag
    # reaches transformers (evil.py defines no classes, so loading then fails)
    with pytest.raises(Exception):  # noqa: B017 (whatever transformers raises for the missing class)
        prunable_modules(str(ckpt), trust_remote_code=True)
    assert marker.exists()


def test_the_workflow_passes_only_the_config_entry_as_trust_remote_code():
    """Every rule that loads a model takes trust_remote_code from the model's config entry (default false)."""
    common = (REPO / "workflow" / "rules" / "common.smk").read_text()
    assert 'return model_cfg(wildcards).get("trust_remote_code", False)' in common
    schema = load_schema(REPO / "workflow" / "schemas" / "config.schema.yaml")
    entry = schema["properties"]["models"]["additionalProperties"]["properties"]["trust_remote_code"]
    assert entry == {"type": "boolean", "default": False}


def _name_problems(name: str) -> list[str]:
    """Schema problems of a minimal config whose only model is called ``name``."""
    schema = load_schema(REPO / "workflow" / "schemas" / "config.schema.yaml")
    cfg = {
        "models": {name: {"path": "org/model"}},
        "benchmarks": {"demo": {}},
        "pruning": {},
        "calibration": {},
        "capture": {},
        "generation": {"budgets": [16], "seeds": [1]},
        "grading": {},
    }
    return schema_problems(cfg, schema)


@pytest.mark.parametrize(
    "name", ["../x", "..", ".", "a/b", "/abs", "~home", ".hidden", "x y", "modèle", "a\\b", "", "-x"]
)
def test_model_names_that_could_leave_results_are_refused(name):
    lines = _name_problems(name)
    assert len(lines) == 1 and lines[0].startswith("models: name") and "rename it" in lines[0], lines


@pytest.mark.parametrize("name", ["demo", "s1.1-7B", "Qwen3-8B", "a..b", "model_2"])
def test_ordinary_model_names_pass(name):
    assert _name_problems(name) == []


@pytest.mark.parametrize("shard", ["../elsewhere/secret.safetensors", "ABSOLUTE", "sub/../../secret.safetensors"])
def test_an_index_naming_a_shard_outside_the_checkpoint_is_refused(demo_model_dir, tmp_path, shard):
    """A sharded checkpoint's index may not place weights outside its directory (transformers refuses the same index):
    the reader never opens another file of the machine, e.g. a private model's weights to be pruned into results/."""
    from prunetts.checkpoint import INDEX, read_header, tensor_shapes

    secret = tmp_path / "elsewhere" / "secret.safetensors"
    secret.parent.mkdir()
    shutil.copy(demo_model_dir / "model.safetensors", secret)
    ckpt = tmp_path / "ckpt"
    ckpt.mkdir()
    for f in demo_model_dir.glob("*.json"):
        shutil.copy(f, ckpt / f.name)
    shard = str(secret) if shard == "ABSOLUTE" else shard
    (ckpt / INDEX).write_text(json.dumps({"weight_map": dict.fromkeys(read_header(secret), shard)}))
    for load in (lambda: Reader(ckpt), lambda: tensor_shapes(ckpt)):
        with pytest.raises(CheckpointError) as err:
            load()
        text = str(err.value)
        assert "\n" not in text and "outside" in text and str(ckpt / INDEX) in text, text
