"""The demo task, its tokenizer and its trainer."""

from prunetts.demo import render, task
from prunetts.demo.tokenizer import build_tokenizer


def test_splits_are_disjoint_and_seeded():
    sets = {s: {p.digits for p in task.sample_problems(s, 300)} for s in ("train", "calibration", "test")}
    assert not sets["train"] & sets["test"]
    assert not sets["train"] & sets["calibration"]
    assert not sets["calibration"] & sets["test"]
    assert [p.digits for p in task.sample_problems("test", 50)] == [p.digits for p in task.sample_problems("test", 50)]


def test_trace_grows_with_the_problem_and_ends_in_the_answer():
    for p in task.sample_problems("test", 200):
        lines = task.trace_lines(p)
        assert len(lines) == len(p.digits)
        assert {len(line) for line in lines} == {task.LINE_WIDTH}
        assert int(lines[-1][0]) == p.answer
        assert task.partial_answer(task.trace(p)) == p.answer


def test_tokenizer_round_trip_and_template():
    tok = build_tokenizer()
    p = task.sample_problems("test", 1)[0]
    text = render.full_text(p)
    ids = tok(text, add_special_tokens=False)["input_ids"]
    assert tok.decode(ids) == text
    assert tok.convert_tokens_to_ids("<|im_start|>") in ids
    chat = tok.apply_chat_template(
        [{"role": "user", "content": p.question}], tokenize=False, add_generation_prompt=True
    )
    assert text.startswith(chat + task.THINK_START + "\n")
    assert "<|im_start|>answer\nThe answer is $\\boxed{" in text


def test_training_few_steps_lowers_the_loss(tmp_path):
    from prunetts.demo.train import train

    losses = train(tmp_path / "m", steps=60, seed=0, batch_size=8, log_every=20)
    assert losses[-1] < 0.7 * losses[0]
    assert (tmp_path / "m" / "model.safetensors").is_file()
    assert (tmp_path / "m" / "tokenizer.json").is_file()
