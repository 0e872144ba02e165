import pytest
import torch

from prunetts.calibration import load_texts, packed_windows, paper_windows
from prunetts.demo.tokenizer import build_tokenizer
from tests.conftest import bench_file, modules_of


def test_paper_windows_are_seeded_and_inside_long_documents():
    tok = build_tokenizer()
    texts = load_texts(str(bench_file("c4_demo.jsonl")))
    assert len(texts) == 300
    a = paper_windows(texts, tok, 6, 512, seed=0)
    assert a == paper_windows(texts, tok, 6, 512, seed=0)
    assert a != paper_windows(texts, tok, 6, 512, seed=1)
    assert all(len(w) == 512 for w in a)
    joined = [tok(t, add_special_tokens=False)["input_ids"] for t in texts]
    for w in a:  # each window is a contiguous slice of one document
        assert any(any(d[i : i + 512] == w for i in range(len(d) - 511)) for d in joined if len(d) > 512)


def test_paper_windows_from_few_texts_are_a_warning(caplog):
    """Drawn with replacement as in the reference, windows from a corpus with one long text all come from it: said, so
    that nobody calibrates on one text unawares; a corpus of many long texts is not warned about."""
    tok = build_tokenizer()
    texts = load_texts(str(bench_file("c4_demo.jsonl")))
    with caplog.at_level("WARNING", logger="prunetts.calibration"):
        paper_windows(texts, tok, 6, 512, seed=0)
        assert "distinct" not in caplog.text
        long = max(texts, key=len)
        windows = paper_windows([long] + ["short text"] * 20, tok, 8, 64, seed=0)
    assert len(windows) == 8
    assert "the 8 windows come from 1 distinct text(s) longer than seqlen=64" in caplog.text
    assert "calibration.mode: pack" in caplog.text


def reference_get_c4(texts, tokenizer, nsamples, seqlen, seed):
    """Wanda's ``lib/data.py:get_c4`` sampling loop as written there (module-level ``random``, plain
    ``tokenizer(text)``), without the torch tensors around it."""
    import random

    random.seed(seed)
    out = []
    for _ in range(nsamples):
        while True:
            i = random.randint(0, len(texts) - 1)
            enc = tokenizer(texts[i])["input_ids"]
            if len(enc) > seqlen:
                break
        i = random.randint(0, len(enc) - seqlen - 1)
        out.append(enc[i : i + seqlen])
    return out


def test_paper_windows_equal_the_reference_draw_with_a_bos_adding_tokenizer():
    from tokenizers.processors import TemplateProcessing

    tok = build_tokenizer()
    bos = "<|im_start|>"  # stands in for Llama's <s>: prepended by the tokenizer's post-processor
    tok._tokenizer.post_processor = TemplateProcessing(
        single=f"{bos} $A", special_tokens=[(bos, tok.convert_tokens_to_ids(bos))]
    )
    texts = load_texts(str(bench_file("c4_demo.jsonl")))
    lengths = [len(tok(t)["input_ids"]) for t in texts]
    # a document of exactly seqlen + 1 tokens only with the BOS: it passes the reference's length test
    seqlen = sorted(lengths)[len(lengths) // 2] - 1
    for seed in (0, 1, 2):
        assert paper_windows(texts, tok, 8, seqlen, seed) == reference_get_c4(texts, tok, 8, seqlen, seed)


def test_paper_windows_stop_at_once_when_no_text_is_long_enough(monkeypatch):
    """Short texts and a long window (the demo texts with the paper's 2048): one line naming both fixes, before any
    of the 100 x len(texts) draws is tokenized."""
    from prunetts.calibration import CalibrationError

    tok = build_tokenizer()
    texts = load_texts(str(bench_file("c4_demo.jsonl")))
    lengths = [len(tok(t)["input_ids"]) for t in texts]
    assert all(n <= len(t.encode()) + 8 for n, t in zip(lengths, texts, strict=True))  # the bound the check uses
    seqlen = max(len(t.encode()) for t in texts) + 8
    calls = []
    monkeypatch.setattr(type(tok), "__call__", lambda *a, **k: calls.append(1))
    with pytest.raises(CalibrationError, match=r"no text is longer than seqlen=\d+ tokens; lower the window length"):
        paper_windows(texts, tok, 4, seqlen, seed=0)
    assert not calls


def test_paper_windows_tokenize_each_text_once_and_fail_after_trying_them_all(monkeypatch):
    """Texts that pass the byte bound but not the token count (a BPE corpus of documents a little shorter than the
    window): one pass over the corpus, not 100 x len(texts) tokenizations; the windows drawn are the reference's."""
    from prunetts.calibration import CalibrationError

    tok = build_tokenizer()
    texts = load_texts(str(bench_file("c4_demo.jsonl")))
    lengths = [len(tok(t)["input_ids"]) for t in texts]
    calls = []
    real = type(tok).__call__
    monkeypatch.setattr(type(tok), "__call__", lambda self, *a, **k: calls.append(1) or real(self, *a, **k))
    with pytest.raises(CalibrationError, match="too few documents longer than seqlen"):
        paper_windows(texts, tok, 4, max(lengths), seed=0)  # no text is longer than the longest
    assert len(calls) == len(texts)
    calls.clear()
    seqlen = sorted(lengths)[-5]  # 4 texts are long enough: drawn again and again, tokenized once each
    windows = paper_windows(texts, tok, 30, seqlen, seed=0)
    assert len(calls) <= len(texts)
    assert windows == reference_get_c4(texts, tok, 30, seqlen, seed=0)


def test_text_files_with_a_byte_order_mark_and_long_csv_fields(tmp_path):
    """Excel's "CSV UTF-8" and Windows editors write a byte-order mark; a whole document can exceed 128 KiB."""
    import csv
    import json

    long = "word " * 40000  # 200,000 characters, over the csv module's default field limit
    (tmp_path / "a.csv").write_text("text\n" + "hello\n" + long + "\n", encoding="utf-8-sig")
    with open(tmp_path / "b.csv", "w", newline="", encoding="utf-8-sig") as f:
        csv.writer(f).writerows([["text"], ["hello"], [long]])
    (tmp_path / "c.jsonl").write_text(json.dumps({"text": "hello"}) + "\n", encoding="utf-8-sig")
    (tmp_path / "d.json").write_text(json.dumps([{"text": "hello"}]), encoding="utf-8-sig")
    assert load_texts(str(tmp_path / "a.csv")) == ["hello", long]
    assert load_texts(str(tmp_path / "b.csv")) == ["hello", long]
    assert load_texts(str(tmp_path / "c.jsonl")) == load_texts(str(tmp_path / "d.json")) == ["hello"]


def test_packed_windows():
    tok = build_tokenizer()
    texts = load_texts("demo", limit=100)
    w = packed_windows(texts, tok, 4, 128, seed=0)
    assert [len(x) for x in w] == [128] * 4


def reference_capture(model_dir, windows):
    """Brute force: the whole model in memory, hooks on every linear and decoder layer, one full forward."""
    from prunetts.models import Arch, load_model

    model = load_model(str(model_dir), dtype="float32", device="cpu")
    arch = Arch.of(model)
    sq, n, cos = {}, {}, {}
    hooks = []
    for li, layer in enumerate(arch.layers(model)):
        for name, lin in arch.prunable_linears(layer).items():

            def hook(_m, i, _o, key=(li, name)):
                x = i[0].detach().double().reshape(-1, i[0].shape[-1])
                sq[key] = sq.get(key, 0) + (x * x).sum(0)
                n[key] = n.get(key, 0) + x.shape[0]

            hooks.append(lin.register_forward_hook(hook))

        def lhook(_m, args, kwargs, out, li=li):
            h = args[0] if args else kwargs["hidden_states"]
            o = out[0] if isinstance(out, tuple) else out
            cos[li] = torch.nn.functional.cosine_similarity(h.float(), o.float(), dim=-1).double().mean().item()

        hooks.append(layer.register_forward_hook(lhook, with_kwargs=True))
    with torch.no_grad():
        model(torch.tensor(windows))
    for h in hooks:
        h.remove()
    return sq, n, cos


def test_streaming_capture_equals_full_model_hooks(tiny_model_dir):
    from prunetts.capture import capture

    windows = [[(7 * i + j) % 200 for j in range(16)] for i in range(5)]
    linear, layers = capture(str(tiny_model_dir), windows, batch_size=5, device="cpu", dtype="float32", progress=False)
    sq, n, cos = reference_capture(tiny_model_dir, windows)
    assert set(linear) == set(sq)
    for key, (s, count) in linear.items():
        assert count == n[key] == 5 * 16
        torch.testing.assert_close(s, sq[key], rtol=1e-5, atol=1e-6)
    assert [round(c, 5) for _, c, _ in layers] == [round(cos[i], 5) for i in range(len(layers))]


def test_capture_does_not_depend_on_batch_size(tiny_qwen3_dir):
    from prunetts.capture import capture

    windows = [[(3 * i + 5 * j) % 250 for j in range(12)] for i in range(5)]
    a, la = capture(str(tiny_qwen3_dir), windows, batch_size=2, device="cpu", dtype="float32", progress=False)
    b, lb = capture(str(tiny_qwen3_dir), windows, batch_size=5, device="cpu", dtype="float32", progress=False)
    for key in a:
        torch.testing.assert_close(a[key][0], b[key][0], rtol=1e-5, atol=1e-6)
    assert [c for _, c, _ in la] == pytest.approx([c for _, c, _ in lb], abs=1e-6)


def test_statistics_pass_without_the_output_projection_measures_the_same(tiny_model_dir):
    """Sequential Wanda's statistics pass skips the output projection's matmul (layerwise.output_skipped): every
    linear's input statistics, the skipped one's included, are exactly those of the full forward, and the layer
    computes normally again afterwards."""
    from prunetts.checkpoint import Reader
    from prunetts.layerwise import LayerRunner, input_sq_norms, output_skipped

    windows = [[(5 * i + 3 * j) % 200 for j in range(16)] for i in range(4)]
    runner = LayerRunner(Reader(tiny_model_dir), "cpu", "float32")
    hidden = runner.embed(windows, 2)
    layer = runner.load_layer(0)
    linears = runner.arch.prunable_linears(layer)
    with input_sq_norms(linears) as (full, _):
        expected_out = runner.forward(0, layer, hidden)
    skipped = linears[runner.arch.output_projection]
    with input_sq_norms(linears) as (fast, _), output_skipped(skipped):
        runner.forward(0, layer, hidden, out=False)
    assert set(fast) == set(full)
    for name in full:
        assert torch.equal(fast[name], full[name]), name
    assert "forward" not in vars(skipped)  # the class's forward is back
    torch.testing.assert_close(runner.forward(0, layer, hidden), expected_out, rtol=0, atol=0)


def test_c4_at_a_commit_reads_that_commit_from_the_hub_cache_offline(tmp_path, monkeypatch):
    """``c4`` and ``c4@<sha>`` read the allenai/c4 shard from the Hugging Face hub cache, offline (HF_HUB_OFFLINE, as
    on compute nodes) through the real ``hf_hub_download``: the default branch's commit (refs/main) or the pinned one;
    a commit the cache lacks, or a missing text field, is one line. (``datasets.load_dataset`` with ``data_files``
    cannot reload such a shard offline: huggingface/datasets#6837.)"""
    import gzip
    import json

    from huggingface_hub import constants

    from prunetts.calibration import C4_FILE, CalibrationError, load_texts
    from prunetts.records import InputFileError

    main, pinned = "a" * 40, "c" * 40
    repo = tmp_path / "hub" / "datasets--allenai--c4"
    for commit, tag in ((main, "main"), (pinned, "pinned")):
        shard = repo / "snapshots" / commit / C4_FILE
        shard.parent.mkdir(parents=True)
        with gzip.open(shard, "wt", encoding="utf-8") as f:
            for i in range(5):
                f.write(json.dumps({"text": f"{tag} {i}", "timestamp": "", "url": ""}) + "\n")
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(main)
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hub"))

    assert load_texts(f"c4@{pinned}", limit=3) == ["pinned 0", "pinned 1", "pinned 2"]
    assert load_texts("c4") == [f"main {i}" for i in range(5)]
    with pytest.raises(CalibrationError, match=r"^c4: no 'content' field \(fields: text, timestamp, url\)"):
        load_texts("c4", "content")
    with pytest.raises(InputFileError) as e:
        load_texts(f"c4@{'d' * 40}")
    message = str(e.value)
    assert "\n" not in message and message.startswith(f"allenai/c4@{'d' * 40}: cannot get {C4_FILE}")
    assert "LocalEntryNotFoundError" in message


def reference_outlier_ratios(model_dir, windows, m):
    """OWL's layerwise outlier distribution as written in ``luuyin/OWL lib/prune_all.py``: Wanda metric
    ``|W| * sqrt(scaler_row)`` (``scaler_row``: the mean over calibration samples of ||X_j||^2) of every linear of the
    layer, flattened and concatenated; ``check_outlier_mean``: 100 x share above ``m`` x the mean."""
    from prunetts.models import Arch, load_model

    sq, _, _ = reference_capture(model_dir, windows)
    arch = Arch.of(load_model(str(model_dir), dtype="float32", device="cpu"))
    model = load_model(str(model_dir), dtype="float32", device="cpu")
    ratios, weight_only = {}, {}
    for li, layer in enumerate(arch.layers(model)):
        metric, plain = [], []
        for name, lin in arch.prunable_linears(layer).items():
            scaler_row = (sq[(li, name)] / len(windows)).float()
            metric.append((lin.weight.data.abs() * torch.sqrt(scaler_row.reshape(1, -1))).flatten())
            plain.append(lin.weight.data.abs().flatten())
        for out, parts in ((ratios, metric), (weight_only, plain)):
            w = torch.cat(parts)
            out[li] = float((w > torch.mean(w) * m).sum().item()) / w.numel() * 100
    return ratios, weight_only


@pytest.mark.parametrize("m", [2.0, 3.0])
def test_owl_outlier_ratios_equal_the_reference(tiny_model_dir, m):
    """The OWL scores the workflow computes from the cached capture (streamed weights, plain sums instead of means)
    are OWL's own outlier ratios; the weight-only ratios differ, so a lost activation factor would fail here."""
    from prunetts.capture import capture
    from prunetts.scores import owl_outlier_ratios

    windows = [[(7 * i + 3 * j) % 200 for j in range(16)] for i in range(6)]
    linear, _ = capture(str(tiny_model_dir), windows, batch_size=4, device="cpu", dtype="float32", progress=False)
    ours = owl_outlier_ratios(str(tiny_model_dir), {k: s for k, (s, _) in linear.items()}, m)
    expected, weight_only = reference_outlier_ratios(tiny_model_dir, windows, m)
    numel = {}
    for li, _, n in modules_of(tiny_model_dir):
        numel[li] = numel.get(li, 0) + n
    assert set(ours) == set(expected)
    for li in expected:  # a score within float rounding of the threshold may fall either side: one weight at most
        assert ours[li] == pytest.approx(expected[li], abs=100 / numel[li] + 1e-9), li
    assert any(v > 0 for v in expected.values())
    assert max(abs(weight_only[li] - expected[li]) for li in expected) > 2 * 100 / min(numel.values())


def test_owl_reads_one_matrix_at_a_time_and_counts_in_chunks_alike(tiny_model_dir, monkeypatch):
    """OWL scoring holds one weight matrix at a time (not the whole layer: 0.4 GB at Qwen3-8B's width) and counts
    the outliers chunk by chunk; the ratios are exactly those of one count over the layer."""
    import prunetts.scores as sc
    from prunetts.capture import capture
    from prunetts.checkpoint import Reader

    windows = [[(7 * i + 3 * j) % 200 for j in range(16)] for i in range(4)]
    linear, _ = capture(str(tiny_model_dir), windows, batch_size=4, device="cpu", dtype="float32", progress=False)
    stats = {k: s for k, (s, _) in linear.items()}
    whole = sc.owl_outlier_ratios(str(tiny_model_dir), stats, 3.0)
    per_layer = {}
    for li, _, n in modules_of(tiny_model_dir):
        per_layer[li] = per_layer.get(li, 0) + n
    assert min(per_layer.values()) > 3 * 997 and any(v > 0 for v in whole.values())
    loads, real_load = [], Reader.load
    monkeypatch.setattr(Reader, "load", lambda self, names: loads.append(list(names)) or real_load(self, names))
    monkeypatch.setattr(sc, "COUNT_CHUNK", 997)  # smaller than every layer's scores: many chunks, a ragged last one
    assert sc.owl_outlier_ratios(str(tiny_model_dir), stats, 3.0) == whole
    assert loads and all(len(names) == 1 for names in loads)


def test_streamed_passes_give_each_freed_layer_back_to_the_os(tiny_model_dir, tmp_path, monkeypatch):
    """Capture, OWL scoring and pruning release malloc's freed memory after every layer (glibc's heaps fragment from
    layer to layer: without it a CPU capture of Qwen3-8B's shape peaked at 4.7 GB instead of 1.6: bench/RESULTS.md,
    (b) at Qwen3-8B's shape); the release itself works here (glibc) and is a no-op elsewhere."""
    import prunetts.layerwise as lw
    from prunetts.capture import capture
    from prunetts.pruning.pruner import prune_checkpoint
    from prunetts.scores import owl_outlier_ratios

    assert lw._malloc_trim() is not None  # the development and CI machines run glibc
    lw.release_freed_memory()
    calls = []
    monkeypatch.setattr(lw, "release_freed_memory", lambda: calls.append(1))
    n_layers = len({li for li, _, _ in modules_of(tiny_model_dir)})
    windows = [[(7 * i + 3 * j) % 200 for j in range(16)] for i in range(4)]
    linear, _ = capture(str(tiny_model_dir), windows, batch_size=4, device="cpu", dtype="float32", progress=False)
    assert len(calls) == n_layers
    owl_outlier_ratios(str(tiny_model_dir), {k: s for k, (s, _) in linear.items()}, 5.0)
    assert len(calls) == 2 * n_layers
    targets = {(li, name): 0.5 for li, name, _ in modules_of(tiny_model_dir)}
    prune_checkpoint(str(tiny_model_dir), str(tmp_path / "pruned"), "magnitude", targets, progress=False)
    assert len(calls) == 3 * n_layers and (tmp_path / "pruned" / "config.json").is_file()


def test_block_influence_counts_a_nan_token_as_one_half(tiny_qwen3_dir):
    """ShortGPT's block_influence replaces a token's NaN cosine (a non-finite hidden state) by 0.5; without it one
    overflowing token makes the layer's BI NaN and the removal order arbitrary."""
    from prunetts.capture import _CaptureRunner
    from prunetts.checkpoint import Reader

    runner = _CaptureRunner(Reader(tiny_qwen3_dir), "cpu", "float32")
    h = torch.ones(1, 3, 4)
    o = torch.ones(1, 3, 4)
    o[0, 1] = float("inf")
    runner._after_batch(0, h, o)
    assert runner.cos_n[0] == 3 and runner.cos_sum[0] == pytest.approx(2.5)


def test_capture_stops_at_the_first_layer_with_overflowing_activations(tiny_qwen3_dir, tmp_path):
    """float16 overflow (one layer's outputs scaled up) gives inf/NaN statistics from the next layer on: the capture
    names that layer and the setting that fixes it instead of storing them (Wanda and OWL would prune by them)."""
    from prunetts.capture import capture
    from prunetts.models import ModelError
    from tests.unit.test_pruning_suite import overflowing_copy

    hot = overflowing_copy(tiny_qwen3_dir, tmp_path / "hot", layer=0)
    windows = [[(3 * i + 5 * j) % 250 for j in range(12)] for i in range(4)]
    expected = r"^capture: layer 1 self_attn\.q_proj: the input activations are inf/NaN \(float16 overflow\); compute"
    with pytest.raises(ModelError, match=expected + r" in bfloat16 or float32 \(capture\.dtype, CLI --dtype\)"):
        capture(str(hot), windows, batch_size=4, device="cpu", dtype="float16", progress=False)
    linear, _ = capture(str(hot), windows, batch_size=4, device="cpu", dtype="float32", progress=False)
    assert all(torch.isfinite(s).all() for s, _ in linear.values())


def test_a_missing_text_field_names_the_callers_setting(tmp_path):
    """The fix a field error names is the setting of the texts being read: the calibration's text field for the
    calibration texts (also as LayerIF's pool), the influence text field for LayerIF's own files."""
    import json

    from prunetts.calibration import CalibrationError
    from prunetts.influence import influence_texts

    prompts = tmp_path / "prompts.jsonl"
    prompts.write_text("".join(json.dumps({"prompt": f"question {i}"}) + "\n" for i in range(8)))
    texts = tmp_path / "texts.jsonl"
    texts.write_text("".join(json.dumps({"text": f"page {i}"}) + "\n" for i in range(8)))
    influence = r"set the text field \(influence\.text_field, CLI --influence-text-field\)$"
    calibration = r"set the text field \(calibration\.text_field, CLI --text-field\)$"
    for train, val, pool, fix in (
        (str(prompts), None, (str(texts), "text"), influence),
        (str(texts), str(prompts), (str(texts), "text"), influence),
        (None, None, (str(prompts), "text"), calibration),
        (None, str(texts), (str(prompts), "text"), calibration),
    ):
        with pytest.raises(CalibrationError, match=rf"prompts\.jsonl: no 'text' field .*{fix}"):
            influence_texts(train, val, "text", 4, 2, seed=0, calibration=pool)
    with pytest.raises(CalibrationError, match=calibration):
        load_texts(str(prompts))


class _CharTokenizer:
    """One token per character (the code point): token counts are exact, so documents of seqlen + 1 .. + 3 tokens."""

    eos_token_id = 0

    def __call__(self, text, add_special_tokens=True, verbose=False):
        return {"input_ids": [ord(c) for c in text]}


def test_paper_windows_start_where_the_reference_starts_in_documents_just_over_seqlen():
    """The window's start is drawn from [0, len - seqlen - 1] as in get_c4, not [0, len - seqlen]: a document of
    seqlen + 1 tokens always gives its first seqlen tokens, and short overhangs (where one more start changes the
    draw) give the reference's windows."""
    tok, seqlen = _CharTokenizer(), 8
    exact = [f"{k:03d}abcdef" for k in range(20)]  # seqlen + 1 characters each
    for seed in range(5):
        windows = paper_windows(exact, tok, 10, seqlen, seed)
        assert all(any(w == [ord(c) for c in t[:seqlen]] for t in exact) for w in windows)
    mixed = [f"{k:03d}" + "x" * (6 + k % 3) for k in range(30)]  # seqlen + 1, + 2, + 3 characters
    for seed in range(5):
        assert paper_windows(mixed, tok, 10, seqlen, seed) == reference_get_c4(mixed, tok, 10, seqlen, seed)


def test_packed_windows_cut_the_eos_joined_documents_in_the_seeded_order():
    """Pack mode: documents in random.Random(seed) order, each followed by EOS, cut into consecutive windows."""
    import random

    tok = _CharTokenizer()
    texts = [f"doc{k}" for k in range(12)]
    for seed in (0, 1):
        order = list(range(len(texts)))
        random.Random(seed).shuffle(order)
        stream = [t for i in order for t in [ord(c) for c in texts[i]] + [tok.eos_token_id]]
        assert packed_windows(texts, tok, 3, 7, seed) == [stream[0:7], stream[7:14], stream[14:21]]
    assert packed_windows(texts, tok, 3, 7, 0) != packed_windows(texts, tok, 3, 7, 1)


def test_load_texts_limit_takes_the_first_records_of_a_file(tmp_path):
    """LayerIF reads its validation texts with ``limit=n_val``: the first n records of a local file, in file order."""
    import json

    path = tmp_path / "t.jsonl"
    path.write_text("".join(json.dumps({"text": f"t{k}"}) + "\n" for k in range(5)))
    assert load_texts(str(path), limit=2) == ["t0", "t1"]
    assert load_texts(str(path)) == load_texts(str(path), limit=None) == [f"t{k}" for k in range(5)]


def test_capture_rows_round_trip_through_the_artifact(tmp_path):
    """linear_rows -> capture Parquet -> stats_from_table gives back {(layer, module): float64 sums} (what Wanda and
    OWL jobs read), and layer_rows keeps each layer's cosine and token count."""
    from prunetts import artifacts
    from prunetts.capture import layer_rows, linear_rows, stats_from_table

    stats = {
        (1, "mlp.up_proj"): (torch.tensor([0.1, 2.0], dtype=torch.float64), 6),
        (0, "self_attn.q_proj"): (torch.tensor([1.0, 1e300, 3.0], dtype=torch.float64), 6),
        (0, "mlp.down_proj"): (torch.tensor([5.0], dtype=torch.float64), 6),
    }
    path = artifacts.write("capture", linear_rows("m", stats, 3), tmp_path / "c.parquet")
    back = stats_from_table(artifacts.read("capture", path))
    assert list(back) == sorted(stats)
    assert all(torch.equal(back[k], stats[k][0]) and back[k].dtype == torch.float64 for k in stats)
    rows = artifacts.read("capture", path).to_pylist()
    assert [(r["layer"], r["module"], r["n_tokens"], r["impl_version"]) for r in rows] == [
        (li, name, 6, 3) for li, name in sorted(stats)
    ]
    layers = layer_rows("m", [(0, 0.25, 6), (1, 0.5, 6)], 3)
    lp = artifacts.write("capture_layers", layers, tmp_path / "l.parquet")
    assert artifacts.read("capture_layers", lp).to_pylist() == layers
