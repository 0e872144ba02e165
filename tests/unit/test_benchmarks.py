"""Benchmark loaders on the real files (offline): counts, the normalised schema, gold normalisation, GPQA's seeded
option shuffle, and options reaching the loaders. GPQA text is never printed: failures name problem ids only."""

import json

import pytest

from prunetts import benchmarks, jobs
from prunetts.benchmarks import gpqa_diamond
from prunetts.grading import KINDS
from tests.conftest import bench_file

EXPECTED = {"math500": 500, "aime24": 30, "amc23": 40, "gpqa_diamond": 198}
CHOICE_FIELDS = ("Correct Answer", "Incorrect Answer 1", "Incorrect Answer 2", "Incorrect Answer 3")


def raw(name: str) -> list[dict]:
    with bench_file(f"{name}.jsonl").open() as f:
        return [json.loads(line) for line in f if line.strip()]


@pytest.fixture(scope="module")
def loaded() -> dict[str, list[dict]]:
    return {name: benchmarks.load(name, str(bench_file(f"{name}.jsonl"))) for name in EXPECTED}


def option_texts(prompt: str) -> list[str] | None:
    """The four option texts of a GPQA prompt, split at the last "\\nD) ", then the last "\\nC) " before it, ..."""
    ends, out = len(prompt), []
    for letter in reversed("ABCD"):
        start = prompt.rfind(f"\n{letter}) ", 0, ends)
        if start < 0:
            return None
        out.append(prompt[start + 4 : ends])
        ends = start
    return out[::-1]


def test_registry():
    assert benchmarks.BENCHMARKS == ("demo", "math500", "aime24", "amc23", "gpqa_diamond")
    assert {benchmarks.kind(n) for n in benchmarks.BENCHMARKS} <= set(KINDS)
    assert benchmarks.kind("gpqa_diamond") == "choice"
    assert {benchmarks.kind(n) for n in ("demo", "math500", "aime24", "amc23")} == {"math"}
    with pytest.raises(ValueError, match="not known"):
        benchmarks.kind("aime25")


@pytest.mark.parametrize("name", list(EXPECTED))
def test_counts_and_schema(loaded, name):
    recs = loaded[name]
    assert len(recs) == EXPECTED[name]
    ids = [r["problem_id"] for r in recs]
    assert all(isinstance(i, str) and i for i in ids)
    assert len(set(ids)) == len(ids)
    assert all(isinstance(r["prompt"], str) and r["prompt"].strip() for r in recs)
    assert all(isinstance(r["gold"], str) and r["gold"].strip() for r in recs)
    rows = benchmarks.rows(name, recs, impl_version=1)
    assert len(rows) == len(recs)
    assert all(r["bench"] == name and r["impl_version"] == 1 for r in rows)
    assert all(isinstance(json.loads(r["metadata"]), dict) for r in rows)


def test_limit(loaded):
    assert benchmarks.load("amc23", str(bench_file("amc23.jsonl")), limit=7) == loaded["amc23"][:7]


def test_math_prompts_are_the_problems_as_is(loaded):
    for name, field in (("math500", "problem"), ("aime24", "problem"), ("amc23", "question")):
        assert [r["prompt"] for r in loaded[name]] == [r[field] for r in raw(name)], name
    assert [r["gold"] for r in loaded["math500"]] == [r["answer"] for r in raw("math500")]
    assert [r["problem_id"] for r in loaded["math500"]] == [r["unique_id"] for r in raw("math500")]


def test_integer_golds_are_plain_digit_strings(loaded):
    aime = loaded["aime24"]
    assert [r["problem_id"] for r in aime] == [str(r["id"]) for r in raw("aime24")]
    assert [int(r["gold"]) for r in aime] == [int(r["answer_str"]) for r in raw("aime24")]
    assert all(r["gold"].isdigit() and (r["gold"] == "0" or not r["gold"].startswith("0")) for r in aime)
    amc = loaded["amc23"]
    assert [int(r["gold"]) for r in amc] == [r["answer"] for r in raw("amc23")]  # 27.0 == 27
    assert all("." not in r["gold"] for r in amc)
    assert "-1" in {r["gold"] for r in amc}


def test_gold_string_normalisation():
    from prunetts.benchmarks.local import gold_string

    assert [gold_string(v) for v in (27.0, -1.0, 25, "025", "27.0", "-3", " 7 ")] == [
        "27",
        "-1",
        "25",
        "25",
        "27",
        "-3",
        "7",
    ]
    assert [gold_string(v) for v in (2.5, "\\frac{1}{2}", "1,000", "0.5")] == ["2.5", "\\frac{1}{2}", "1,000", "0.5"]


def test_gpqa_gold_points_at_the_correct_answer(loaded):
    recs, src = loaded["gpqa_diamond"], {r["Record ID"]: r for r in raw("gpqa_diamond")}
    bad = []
    for r in recs:
        doc, meta = src[r["problem_id"]], r["metadata"]
        texts = option_texts(r["prompt"])
        ok = (
            texts is not None
            and r["gold"] in "ABCD"
            and len(r["gold"]) == 1
            and texts["ABCD".index(r["gold"])] == doc["Correct Answer"].strip()
            and sorted(texts) == sorted(doc[f].strip() for f in CHOICE_FIELDS)
            and r["prompt"].startswith(doc["Question"].strip() + "\n\nA) ")
            and meta["permutation"] == gpqa_diamond.permutation(0, r["problem_id"])
            and [doc[f].strip() for f in meta["choices"]] == texts
            and meta["choices"][meta["permutation"].index(gpqa_diamond.CORRECT)] == "Correct Answer"
        )
        if not ok:
            bad.append(r["problem_id"])
    assert not bad, f"{len(bad)} GPQA records with a wrong gold/prompt/permutation (ids: {bad[:5]})"


def test_gpqa_shuffle_is_seeded(loaded):
    path = str(bench_file("gpqa_diamond.jsonl"))
    seed0 = loaded["gpqa_diamond"]
    # comparisons go through booleans so that a failure never prints GPQA text
    same = benchmarks.load("gpqa_diamond", path, shuffle_seed=0) == seed0  # deterministic; 0 is the default
    assert same
    seed1 = benchmarks.load("gpqa_diamond", path, shuffle_seed=1)
    same = benchmarks.load("gpqa_diamond", path, shuffle_seed=1) == seed1
    assert same
    assert [r["problem_id"] for r in seed1] == [r["problem_id"] for r in seed0]
    assert all(r["metadata"]["shuffle_seed"] == 1 for r in seed1)
    perms0, perms1 = ([r["metadata"]["permutation"] for r in recs] for recs in (seed0, seed1))
    differ = sum(a != b for a, b in zip(perms0, perms1, strict=True))
    assert differ >= 0.85 * len(seed0)  # two random orders of 4 agree with probability 1/24
    counts = {letter: sum(r["gold"] == letter for r in seed0) for letter in "ABCD"}
    assert min(counts.values()) >= 30, counts  # the correct answer is not stuck in one position
    assert sorted(gpqa_diamond.permutation(3, "x")) == [0, 1, 2, 3]


def test_gpqa_order_depends_on_seed_and_id_only(tmp_path):
    """Synthetic questions: reversing the file or dropping questions leaves each question's order unchanged."""
    docs = [
        {
            "Record ID": f"rec{i}",
            "Question": f"q{i}",
            "Correct Answer": "right",
            **{f: f"w{k}" for k, f in enumerate(CHOICE_FIELDS[1:])},
        }
        for i in range(20)
    ]
    forward, backward = tmp_path / "f.jsonl", tmp_path / "b.jsonl"
    forward.write_text("".join(json.dumps(d) + "\n" for d in docs))
    backward.write_text("".join(json.dumps(d) + "\n" for d in docs[::2][::-1]))
    a = {r["problem_id"]: r for r in benchmarks.load("gpqa_diamond", str(forward), shuffle_seed=7)}
    b = benchmarks.load("gpqa_diamond", str(backward), shuffle_seed=7)
    assert len(b) == 10 and all(r == a[r["problem_id"]] for r in b)
    assert all(r["prompt"].split("\n")[2 + "ABCD".index(r["gold"])] == f"{r['gold']}) right" for r in b)
    assert len({tuple(r["metadata"]["permutation"]) for r in a.values()}) > 5


def test_gpqa_prompt_layout():
    prompt = gpqa_diamond.format_prompt("Q?", ["w", "x", "y", "z"])
    assert prompt == "Q?\n\nA) w\nB) x\nC) y\nD) z"


def test_unknown_options_are_rejected_with_one_line():
    with pytest.raises(
        ValueError, match=r"^benchmark 'math500' takes no option shuffle_seed \(its options: source, limit, revision\)$"
    ):
        benchmarks.load("math500", str(bench_file("math500.jsonl")), shuffle_seed=1)


@pytest.mark.parametrize("suffix", ["jsonl", "csv"])
def test_a_source_without_problems_is_one_line(tmp_path, suffix):
    """An empty file made empty generations, grades and figures, and a summary silently without the benchmark."""
    from prunetts.records import InputFileError

    path = tmp_path / f"empty.{suffix}"
    path.write_text("" if suffix == "jsonl" else "problem,answer\n")
    with pytest.raises(InputFileError, match=r"^benchmarks\.math500: .*empty\.\w+ holds no problems; give a source"):
        jobs.prepare_benchmark(str(tmp_path / "b.parquet"), bench="math500", options={"source": str(path)})
    assert not (tmp_path / "b.parquet").exists()


def test_a_repeated_problem_id_is_one_line_before_anything_runs(tmp_path):
    """A local AMC file numbering problems within each contest (12A and 12B both have 1-25) would let one problem's
    generations and grades overwrite the other's."""
    from prunetts.records import InputFileError

    rows = [{"id": n, "question": f"q{k}", "answer": k} for k, n in enumerate([1, 2, 3, 1, 2])]
    path = tmp_path / "amc.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    with pytest.raises(InputFileError, match=r"^benchmarks\.amc23: problem id '1' appears twice in .*amc\.jsonl "):
        jobs.prepare_benchmark(str(tmp_path / "b.parquet"), bench="amc23", options={"source": str(path)})
    assert not (tmp_path / "b.parquet").exists()


def test_prepare_benchmark_passes_options(tmp_path):
    from prunetts import artifacts

    out = tmp_path / "gpqa.parquet"
    opts = {"source": str(bench_file("gpqa_diamond.jsonl")), "limit": 4, "shuffle_seed": 5}
    jobs.prepare_benchmark(str(out), bench="gpqa_diamond", options=opts)
    tbl = artifacts.read("benchmark", out).to_pydict()
    assert len(tbl["problem_id"]) == 4
    assert all(json.loads(m)["shuffle_seed"] == 5 for m in tbl["metadata"])
    with pytest.raises(ValueError, match="takes no option shuffle_seed"):
        jobs.prepare_benchmark(str(tmp_path / "x.parquet"), bench="aime24", options={**opts, "source": None})


def test_with_defaults_writes_in_the_loaders_own_defaults():
    """prepare_benchmark's params: a written-out default and a left-out one are the same options; a None default
    (revision) stays unset, so no hub benchmark's params change."""
    assert benchmarks.with_defaults("gpqa_diamond", {"limit": None}) == {"limit": None, "shuffle_seed": 0}
    assert benchmarks.with_defaults("gpqa_diamond", {"shuffle_seed": 0}) == {"shuffle_seed": 0}
    assert benchmarks.with_defaults("gpqa_diamond", {"shuffle_seed": 2})["shuffle_seed"] == 2
    for name in ("demo", "math500", "aime24", "amc23"):
        assert benchmarks.with_defaults(name, {"source": None, "limit": 3}) == {"source": None, "limit": 3}
    assert benchmarks.with_defaults("math500", None) == {}


def test_config_accepts_shuffle_seed_for_gpqa_only():
    from pathlib import Path

    import yaml
    from snakemake.utils import validate

    from prunetts.config import ConfigError, check

    repo = Path(__file__).resolve().parents[2]
    cfg = yaml.safe_load((repo / "config" / "config.yaml").read_text())
    cfg["benchmarks"] = {"gpqa_diamond": {"shuffle_seed": 3}, "aime24": {}, "amc23": {"limit": 5}, "math500": {}}
    validate(cfg, str(repo / "workflow" / "schemas" / "config.schema.yaml"))
    check(cfg)
    cfg["benchmarks"]["math500"] = {"shuffle_seed": 3}
    with pytest.raises(ConfigError, match=r"benchmarks\.math500: shuffle_seed is not an option of math500"):
        check(cfg)


class _HubDataset(list):
    """What ``datasets.load_dataset`` returns for a hub dataset: the records, and the arrow files of the cache folder
    named by the commit they came from."""

    def __init__(self, records, commit):
        super().__init__(records)
        self.cache_files = [{"filename": f"/hf/datasets/org___name/default/0.0.0/{commit}/data-train.arrow"}]


def _fake_hub_datasets(monkeypatch, served_commit: str) -> list[dict]:
    """``datasets.load_dataset`` answering every default source with that benchmark's real records, as cached at
    ``served_commit``; returns the calls it got."""
    import datasets

    from prunetts.benchmarks import aime24, amc23, math500

    by_id = {m.HF_ID: name for name, m in zip(EXPECTED, (math500, aime24, amc23, gpqa_diamond), strict=True)}
    calls = []

    def load_dataset(path, name=None, split=None, revision=None, data_files=None):
        calls.append(dict(path=path, name=name, split=split, revision=revision))
        return _HubDataset(raw(by_id[path]), served_commit)

    monkeypatch.setattr(datasets, "load_dataset", load_dataset)
    return calls


def test_each_hub_loader_passes_the_revision_and_checks_the_commit_it_got(monkeypatch):
    pinned, other = "a" * 40, "b" * 40
    calls = _fake_hub_datasets(monkeypatch, served_commit=pinned)
    for name, n in EXPECTED.items():
        assert len(benchmarks.load(name, None, revision=pinned)) == n
    assert [c["revision"] for c in calls] == [pinned] * 4
    # the paper's splits (and GPQA's config): the default sources hold nothing else under another split name
    assert [(c["path"], c["name"], c["split"]) for c in calls] == [
        ("HuggingFaceH4/MATH-500", None, "test"),
        ("simplescaling/aime24_nofigures", None, "train"),
        ("math-ai/amc23", None, "test"),
        ("Idavidrein/gpqa", "gpqa_diamond", "train"),
    ]
    assert benchmarks.load("math500", None) and calls[-1]["revision"] is None  # unpinned: the default branch
    # offline, datasets hands back whichever copy it cached last, whatever the revision: caught, in one line
    _fake_hub_datasets(monkeypatch, served_commit=other)
    for name in EXPECTED:
        with pytest.raises(benchmarks.local.InputFileError) as e:
            benchmarks.load(name, None, revision=pinned)
        assert "\n" not in str(e.value) and "another commit's cached copy" in str(e.value) and other in str(e.value)
    # a branch cannot be checked against the folder name: taken as served
    assert len(benchmarks.load("amc23", None, revision="main")) == 40


def test_a_hub_dataset_that_cannot_be_loaded_is_one_line(monkeypatch):
    import datasets
    from datasets.exceptions import DatasetNotFoundError

    def missing(*args, **kwargs):
        raise DatasetNotFoundError("Revision 'v9' doesn't exist for dataset 'HuggingFaceH4/MATH-500' on the Hub.\nmore")

    monkeypatch.setattr(datasets, "load_dataset", missing)
    with pytest.raises(benchmarks.local.InputFileError) as e:
        benchmarks.load("math500", None, revision="v9")
    message = str(e.value)
    assert "\n" not in message and message.startswith("HuggingFaceH4/MATH-500@v9: cannot load the dataset")
    assert "check the id, the revision" in message
    with pytest.raises(benchmarks.local.InputFileError, match="pins hub datasets only"):
        benchmarks.load("math500", str(bench_file("math500.jsonl")), revision="a" * 40)


@pytest.mark.parametrize(
    ("name", "record", "missing"),
    [
        # Maxwell-Jia/AIME_2024's (upstream lm-eval's aime24) capitalised columns
        ("aime24", {"ID": "2024-I-1", "Problem": "p", "Answer": 204}, "'problem' or 'question'"),
        ("math500", {"question": "p", "answer": "1"}, "'problem'"),
        ("amc23", {"id": 1, "question": "p", "answer": None}, "'answer'"),  # a null gold used to become "None"
        ("math500", {"problem": "  ", "answer": "1"}, "'problem'"),  # a blank prompt
        ("gpqa_diamond", {"Record ID": "r1", "Question": "q", "Correct Answer": "c"}, "'Incorrect Answer 1'"),
    ],
)
def test_a_record_missing_a_required_field_is_one_line(tmp_path, name, record, missing):
    """A file with another schema (or a null/blank value) stops the job with one line naming the file, the record, the
    missing field and the fields it has - not a KeyError traceback, and never a silent "None" gold."""
    from prunetts.records import InputFileError

    path = tmp_path / "b.jsonl"
    path.write_text(json.dumps({"id": 0, "problem": "ok", "question": "ok", "answer": 1}) + "\n" + json.dumps(record))
    if name == "gpqa_diamond":  # the first record must be a complete GPQA one
        full = {"Record ID": "r0", "Question": "q", **{f: "x" for f in CHOICE_FIELDS}}
        path.write_text(json.dumps(full) + "\n" + json.dumps(record))
    with pytest.raises(InputFileError, match=rf"^benchmarks\.{name}: record 1 of .*b\.jsonl has no {missing} ") as e:
        benchmarks.load(name, str(path))
    assert "\n" not in str(e.value)
    assert "its fields: " in str(e.value)


def test_local_aime_and_amc_files_fall_back_field_by_field(tmp_path):
    """AIME: id, else problem_label, else the position; the problem field before question. AMC: question before
    problem; id else the position. Gold as the harness's str(int(answer))."""
    aime = tmp_path / "aime.jsonl"
    aime.write_text(
        "".join(
            json.dumps(r) + "\n"
            for r in (
                {"id": 7, "problem_label": "2024-I-1", "problem": "P", "question": "Q", "answer": "025"},
                {"problem_label": "2024-I-2", "problem": "P2", "question": "Q2", "answer": 3},
                {"question": "Q3", "answer": "4"},
            )
        )
    )
    got = benchmarks.load("aime24", str(aime))
    assert [(r["problem_id"], r["prompt"], r["gold"]) for r in got] == [
        ("7", "P", "25"),
        ("2024-I-2", "P2", "3"),
        ("2", "Q3", "4"),
    ]
    amc = tmp_path / "amc.jsonl"
    amc.write_text(
        "".join(
            json.dumps(r) + "\n"
            for r in ({"id": 30, "question": "Q", "problem": "P", "answer": 27.0}, {"problem": "P2", "answer": -1.0})
        )
    )
    got = benchmarks.load("amc23", str(amc))
    assert [(r["problem_id"], r["prompt"], r["gold"]) for r in got] == [("30", "Q", "27"), ("1", "P2", "-1")]
