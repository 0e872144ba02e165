"""A real Hugging Face tokenizer for the demo model, built with the ``tokenizers`` library.

Byte-level BPE with no merges: every byte is one token, so any text round-trips exactly and the digit arithmetic of
the demo task is token-aligned. ChatML special tokens as in Qwen/s1 (``<|im_start|>``, ``<|im_end|>``,
``<|endoftext|>``) plus Qwen3's ``<think>``/``</think>``. The chat template is the s1/Qwen ChatML template without the
default system prompt (deviation: it would triple the demo's prompt length for no benefit).
"""

from __future__ import annotations

from tokenizers import Tokenizer, decoders, models, pre_tokenizers

SPECIAL_TOKENS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<think>", "</think>"]

CHAT_TEMPLATE = (
    "{%- for message in messages %}"
    "{{- '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}"
    "{%- endfor %}"
    "{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}{%- endif %}"
)


def build_tokenizer():
    """Return a ``PreTrainedTokenizerFast`` (vocab: 256 bytes + special tokens)."""
    from transformers import PreTrainedTokenizerFast

    alphabet = sorted(pre_tokenizers.ByteLevel.alphabet())
    vocab = {ch: i for i, ch in enumerate(alphabet)}
    tok = Tokenizer(models.BPE(vocab=vocab, merges=[]))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)
    tok.decoder = decoders.ByteLevel()
    tok.add_special_tokens(SPECIAL_TOKENS)
    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        chat_template=CHAT_TEMPLATE,
        model_max_length=1024,
    )
