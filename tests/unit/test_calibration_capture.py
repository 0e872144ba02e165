import torch
from prunetts.calibration import load_texts, packed_windows, paper_windows
from prunetts.demo.tokenizer import build_tokenizer

from tests.conftest import bench_file


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


def test_packed_windows():
    tok = build_tokenizer()
    texts = load_texts("demo", limit=100)
    w = packed_windows(texts, tok, 4, 128, seed=0)
    assert [len(x) for x in w] == [128] * 4


def test_capture_matches_manual_sum(tiny_model_dir):
    from prunetts.capture import capture_linear_stats
    from prunetts.models import Arch, load_model

    model = load_model(str(tiny_model_dir), dtype="float32", device="cpu")
    windows = [[(7 * i + j) % 200 for j in range(16)] for i in range(5)]
    stats = capture_linear_stats(model, windows, batch_size=2, progress=False)
    arch = Arch.of(model)
    seen = {}
    lin = arch.prunable_linears(arch.layers(model)[1])["mlp.down_proj"]
    h = lin.register_forward_hook(lambda m, i, o: seen.setdefault("x", []).append(i[0].detach().double()))
    with torch.no_grad():
        model(torch.tensor(windows))
    h.remove()
    x = torch.cat([t.reshape(-1, t.shape[-1]) for t in seen["x"]])
    s, n = stats[(1, "mlp.down_proj")]
    assert n == 5 * 16
    torch.testing.assert_close(s, (x * x).sum(0), rtol=1e-5, atol=1e-8)
    assert len(stats) == 7 * len(arch.layers(model))
