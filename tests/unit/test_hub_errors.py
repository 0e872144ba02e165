"""Hub failures raised as the installed huggingface_hub / datasets raise them (their real exception classes, not
stand-ins), each ending in one line instead of a traceback."""

from __future__ import annotations

import pytest


def _transport_error():
    """What huggingface_hub's ``http_get`` re-raises when a download's connection times out past its retries: the
    HTTP client's own exception (httpx / httpx2), neither an OSError nor a ValueError."""
    from huggingface_hub.utils import httpx

    error = httpx.ReadTimeout("The read operation timed out")
    assert not isinstance(error, (OSError, ValueError))  # the premise: caught only if named
    return error


def test_a_dropped_download_of_a_hub_model_is_one_line(monkeypatch):
    import huggingface_hub

    from prunetts.checkpoint import CheckpointError, resolve

    def download(*args, **kwargs):
        raise _transport_error()

    monkeypatch.setattr(huggingface_hub, "snapshot_download", download)
    with pytest.raises(CheckpointError) as e:
        resolve("org/model", "a" * 40, hub=True)
    message = str(e.value)
    assert "\n" not in message and message.startswith(f"org/model@{'a' * 40}: cannot get the checkpoint")
    assert "ReadTimeout" in message and "check the id and the network" in message and "under the working" not in message
    # not taken for a hub id by the caller (a config's path) and not found: it may be a relative path from another
    # directory
    from huggingface_hub.errors import LocalEntryNotFoundError

    def offline(*args, **kwargs):
        raise LocalEntryNotFoundError("not in the cache")

    monkeypatch.setattr(huggingface_hub, "snapshot_download", offline)
    with pytest.raises(CheckpointError, match=r"\(no directory org/model under the working directory /"):
        resolve("org/model")


def test_a_hub_id_without_weights_fetches_no_safetensors(monkeypatch, tmp_path):
    """``weights=False`` (a tokenizer-only job, e.g. prepare_calibration) downloads the small files only, not the
    16 GB of weights; the default downloads them too."""
    import huggingface_hub

    from prunetts.checkpoint import resolve

    asked = []

    def download(repo_id, revision=None, allow_patterns=None, **kwargs):
        asked.append(list(allow_patterns))
        return str(tmp_path)

    monkeypatch.setattr(huggingface_hub, "snapshot_download", download)
    assert resolve("org/model", weights=False) == tmp_path and resolve("org/model") == tmp_path
    assert "*.json" in asked[0] and "*.safetensors" not in asked[0] and "*.safetensors" in asked[1]


def test_a_dropped_download_of_a_hub_dataset_is_one_line(monkeypatch):
    import datasets

    from prunetts.records import InputFileError, hub_dataset

    def load_dataset(*args, **kwargs):
        raise _transport_error()

    monkeypatch.setattr(datasets, "load_dataset", load_dataset)
    with pytest.raises(InputFileError) as e:
        hub_dataset("HuggingFaceH4/MATH-500", split="test")
    assert "\n" not in str(e.value) and "ReadTimeout" in str(e.value)


def test_a_hub_dataset_that_needs_a_loading_script_is_one_line(monkeypatch):
    """datasets >= 4 refuses a repository that still loads through a script with a RuntimeError (datasets/load.py);
    the user gets one line that says so and points to a local file."""
    import datasets

    from prunetts.records import InputFileError, hub_dataset

    def load_dataset(*args, **kwargs):
        raise RuntimeError("Dataset scripts are no longer supported, but found gpqa.py")

    monkeypatch.setattr(datasets, "load_dataset", load_dataset)
    with pytest.raises(InputFileError) as e:
        hub_dataset("Idavidrein/gpqa", "gpqa_diamond", split="train")
    message = str(e.value)
    assert "\n" not in message and "Dataset scripts are no longer supported" in message
    assert "give a local file" in message


def test_an_unreachable_hub_text_file_is_one_line_without_the_retry_warnings(monkeypatch):
    """Offline without a cached copy, hf_hub_download retries its request five times and warns twice each time (11
    lines before prunetts's one); those warnings are dropped during the call, in its thread only."""
    import logging

    import huggingface_hub

    from prunetts.records import InputFileError, hub_dataset_file

    http_log = logging.getLogger("huggingface_hub.utils._http")
    emitted = []
    handler = logging.Handler()
    handler.emit = emitted.append  # the library's own handler writes to the stderr of its import time
    http_log.addHandler(handler)

    def download(*args, **kwargs):
        for retry in range(1, 6):  # as huggingface_hub.utils._http.http_backoff logs them
            http_log.warning("Retrying in 1s [Retry %d/5].", retry)
        raise OSError("[Errno -2] Name or service not known")

    monkeypatch.setattr(huggingface_hub, "hf_hub_download", download)
    with pytest.raises(InputFileError) as e:
        hub_dataset_file("allenai/c4", "en/c4-train.00000-of-01024.json.gz")
    assert "\n" not in str(e.value) and "Name or service not known" in str(e.value)
    assert not emitted
    http_log.warning("after the call")  # the library's warnings pass again
    http_log.removeHandler(handler)
    assert [r.getMessage() for r in emitted] == ["after the call"]


def test_a_local_dataset_folder_without_the_split_gets_advice_about_its_files(tmp_path, monkeypatch):
    """A local copy of a dataset repository whose files hold another split (or a missing local path) was answered
    with the hub's advice (check the id, the network, the cache); the line now says what the folder lacks. The real
    datasets library reads the folder: a folder whose file is named for the split loads."""
    import datasets

    from prunetts.benchmarks import load
    from prunetts.records import InputFileError

    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", tmp_path / "cache")  # not the user's cache
    folder = tmp_path / "math500"
    (folder / "data").mkdir(parents=True)
    (folder / "data" / "train.jsonl").write_text('{"problem": "1+1", "answer": "2", "unique_id": "p1"}\n')
    with pytest.raises(InputFileError) as e:
        load("math500", source=str(folder))
    message = str(e.value)
    assert "\n" not in message and message.startswith(f"{folder}: cannot load split 'test' from this local folder")
    assert "test.jsonl" in message and "network" not in message and "the id" not in message

    with pytest.raises(InputFileError) as e:
        load("math500", source=str(tmp_path / "missing"))
    assert str(e.value) == (
        f"{tmp_path / 'missing'}: no such file or folder; give an existing local file (.jsonl / .json / .parquet / "
        ".csv) or a hub dataset id (org/name)"
    )

    (folder / "data" / "train.jsonl").rename(folder / "data" / "test.jsonl")
    assert [r["problem_id"] for r in load("math500", source=str(folder))] == ["p1"]
