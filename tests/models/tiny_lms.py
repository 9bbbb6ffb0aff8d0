"""Tiny random causal language models built offline, saved as the hub saves them.

A byte-level BPE tokenizer is trained here with the ``tokenizers`` library; the model is a
2-layer GPT-2 or Llama with random weights from its config class. Tests load the folder back
through ``AutoTokenizer`` + ``AutoModelForCausalLM`` (the path a hub id takes), both in this
harness and in lm-eval. Test helper only: nothing in ``harness`` imports it.
"""

from __future__ import annotations

from pathlib import Path

_CORPUS = [
    "Question: Is this wrong?\nAnswer: no yes",
    "I helped my neighbour carry her groceries. I took the last cookie and lied about it.",
    "The quick brown fox jumps over the lazy dog. 12 + 30 = 42. #### 42",
    "A: B: C: D: The answer is (A) (B) (C) (D). true false True False",
    "Q: What is 2 + 2? A: 4. She went to the store, then she went home.",
]


def _tokenizer(bos: str | None):  # noqa: ANN202
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    core = Tokenizer(models.BPE(unk_token="<unk>"))
    core.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    core.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=300, special_tokens=["<unk>", "<|endoftext|>", "<s>"],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    core.train_from_iterator(_CORPUS * 4, trainer)
    if bos:  # like Llama's tokenizer: encoding with special tokens prepends BOS
        core.post_processor = processors.TemplateProcessing(
            single=f"{bos} $A", special_tokens=[(bos, core.token_to_id(bos))])
    named = {"bos_token": bos} if bos else {}
    return PreTrainedTokenizerFast(tokenizer_object=core, unk_token="<unk>",
                                   eos_token="<|endoftext|>", **named)


def build_tiny_lm(folder: Path, kind: str = "gpt2", seed: int = 0, n_positions: int = 256) -> Path:
    """A 2-layer random ``gpt2`` (no BOS) or ``llama`` (BOS prepended) saved to ``folder``."""
    import torch
    from transformers import GPT2Config, GPT2LMHeadModel, LlamaConfig, LlamaForCausalLM

    folder.mkdir(parents=True, exist_ok=True)
    tokenizer = _tokenizer("<s>" if kind == "llama" else None)
    vocab = len(tokenizer)
    torch.manual_seed(seed)
    model: torch.nn.Module
    if kind == "gpt2":
        config = GPT2Config(vocab_size=vocab, n_positions=n_positions, n_embd=32, n_layer=2, n_head=2,
                            bos_token_id=tokenizer.eos_token_id, eos_token_id=tokenizer.eos_token_id)
        model = GPT2LMHeadModel(config)
    elif kind == "llama":
        config = LlamaConfig(vocab_size=vocab, hidden_size=32, intermediate_size=64,
                             num_hidden_layers=2, num_attention_heads=2, num_key_value_heads=2,
                             max_position_embeddings=n_positions,
                             bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id)
        model = LlamaForCausalLM(config)
    else:
        raise ValueError(kind)
    model.eval()
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder
