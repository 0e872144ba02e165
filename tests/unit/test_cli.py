"""``prunetts prune``: the five documented flags work for every method and allocation; bad input is one line."""

import json

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
