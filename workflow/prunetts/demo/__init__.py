"""The embedded CPU demo: a synthetic reasoning task, its tokenizer, and the trainer of its tiny Qwen3 model."""
