"""Tiny random VLMs built offline, saved in the hub's own file formats.

Each builder trains a small byte-level BPE tokenizer on a few sentences, builds the
architecture's processor and a model with random weights from its config classes, and saves
all of it to a folder. Tests load that folder back through ``AutoProcessor`` and
``AutoModelForImageTextToText``: the code path that a hub id takes after download.

Test helper only: nothing in ``harness`` imports it.
"""

from __future__ import annotations

from pathlib import Path

_CORPUS = [
    "Q: Do I help her cross the street? A: Yes, helping her is kind.",
    "Q: Should I take his wallet? A: No, stealing is wrong.",
    "USER: ASSISTANT: system user assistant yes no Yes No maybe",
    "The old lady waits by the road. The man is pregnant. I am not sure.",
]


def _tokenizer(special: list[str], add_bos: str | None = None, **named: str):  # noqa: ANN202
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    core = Tokenizer(models.BPE(unk_token="<unk>"))
    core.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    core.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=320, special_tokens=["<unk>", *special],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    core.train_from_iterator(_CORPUS * 4, trainer)
    if add_bos:  # like Llama's tokenizer: encoding with special tokens prepends BOS
        core.post_processor = processors.TemplateProcessing(
            single=f"{add_bos} $A", special_tokens=[(add_bos, core.token_to_id(add_bos))])
    return PreTrainedTokenizerFast(tokenizer_object=core, unk_token="<unk>", **named)


# Chat templates in each family's own shape (written here, not copied from the hub).
_LLAVA_TEMPLATE = (
    "{% for message in messages %}{{ message['role'].upper() }}: "
    "{% for item in message['content'] %}{% if item['type'] == 'image' %}<image>\n"
    "{% else %}{{ item['text'] }}{% endif %}{% endfor %} {% endfor %}"
    "{% if add_generation_prompt %}ASSISTANT:{% endif %}"
)
_IDEFICS_TEMPLATE = (
    "<|im_start|>{% for message in messages %}{{ message['role'] | capitalize }}:"
    "{% for item in message['content'] %}{% if item['type'] == 'image' %}<image>"
    "{% else %}{{ item['text'] }}{% endif %}{% endfor %}<end_of_utterance>\n{% endfor %}"
    "{% if add_generation_prompt %}Assistant:{% endif %}"
)


def build_tiny_llava(folder: Path, seed: int = 0) -> Path:
    """A 2-layer LLaVA (CLIP vision tower + Llama) with 28x28 images; returns ``folder``."""
    import torch
    from transformers import (
        CLIPVisionConfig,
        LlamaConfig,
        LlavaConfig,
        LlavaForConditionalGeneration,
        LlavaProcessor,
    )
    from transformers.models.llava.image_processing_pil_llava import LlavaImageProcessorPil

    tokenizer = _tokenizer(["<s>", "</s>", "<pad>", "<image>"], add_bos="<s>",
                           bos_token="<s>", eos_token="</s>", pad_token="<pad>")
    processor = LlavaProcessor(
        image_processor=LlavaImageProcessorPil(size={"shortest_edge": 28},
                                               crop_size={"height": 28, "width": 28}),
        tokenizer=tokenizer, patch_size=14, vision_feature_select_strategy="default",
        num_additional_image_tokens=1, chat_template=_LLAVA_TEMPLATE,
    )
    config = LlavaConfig(
        vision_config=CLIPVisionConfig(hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                                       num_attention_heads=2, image_size=28, patch_size=14),
        text_config=LlamaConfig(vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64,
                                num_hidden_layers=2, num_attention_heads=2, num_key_value_heads=2,
                                max_position_embeddings=512, pad_token_id=tokenizer.pad_token_id,
                                bos_token_id=tokenizer.bos_token_id,
                                eos_token_id=tokenizer.eos_token_id),
        image_token_index=tokenizer.convert_tokens_to_ids("<image>"),
        vision_feature_layer=-1, vision_feature_select_strategy="default",
    )
    torch.manual_seed(seed)
    LlavaForConditionalGeneration(config).save_pretrained(folder)
    processor.save_pretrained(folder)
    return folder


def build_tiny_idefics3(folder: Path, seed: int = 0) -> Path:
    """A 2-layer Idefics3 (SmolVLM's architecture: SigLIP + pixel shuffle + Llama); returns ``folder``."""
    import torch
    from transformers import Idefics3Config, Idefics3ForConditionalGeneration, Idefics3Processor
    from transformers.models.idefics3.image_processing_pil_idefics3 import (
        Idefics3ImageProcessorPil,
    )

    tokenizer = _tokenizer(["<|im_start|>", "<end_of_utterance>", "<pad>", "<image>",
                            "<fake_token_around_image>", "<global-img>"],
                           bos_token="<|im_start|>", eos_token="<end_of_utterance>",
                           pad_token="<pad>")
    image_processor = Idefics3ImageProcessorPil(
        size={"longest_edge": 56}, max_image_size={"longest_edge": 28}, do_image_splitting=False,
    )
    # 28 px / 14 px patches = 4 patches; pixel shuffle by 2 folds them into 1 token per image.
    processor = Idefics3Processor(image_processor=image_processor, tokenizer=tokenizer,
                                  image_seq_len=1, chat_template=_IDEFICS_TEMPLATE)
    config = Idefics3Config(
        vision_config={"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2,
                       "num_attention_heads": 2, "image_size": 28, "patch_size": 14},
        text_config={"model_type": "llama", "vocab_size": len(tokenizer), "hidden_size": 32,
                     "intermediate_size": 64, "num_hidden_layers": 2, "num_attention_heads": 2,
                     "num_key_value_heads": 2, "max_position_embeddings": 512,
                     "pad_token_id": tokenizer.pad_token_id,
                     "bos_token_id": tokenizer.bos_token_id,
                     "eos_token_id": tokenizer.eos_token_id},
        image_token_id=tokenizer.convert_tokens_to_ids("<image>"), scale_factor=2,
        pad_token_id=tokenizer.pad_token_id,
    )
    torch.manual_seed(seed)
    Idefics3ForConditionalGeneration(config).save_pretrained(folder)
    processor.save_pretrained(folder)
    return folder


def write_qwen2_vl_processor(folder: Path) -> Path:
    """Only the processor files of a Qwen2-VL repo (tokenizer + preprocessor config).

    Qwen2-VL's processor also builds a video processor, which imports torchvision; without
    it, loading must fail with a clear message rather than a traceback.
    """
    import json

    special = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|vision_start|>",
               "<|vision_end|>", "<|image_pad|>", "<|video_pad|>"]
    _tokenizer(special, eos_token="<|im_end|>", pad_token="<|endoftext|>").save_pretrained(folder)
    (folder / "preprocessor_config.json").write_text(json.dumps({
        "image_processor_type": "Qwen2VLImageProcessor", "processor_class": "Qwen2VLProcessor",
        "min_pixels": 784, "max_pixels": 3136, "patch_size": 14, "merge_size": 2,
        "temporal_patch_size": 2}))
    (folder / "config.json").write_text(json.dumps({"model_type": "qwen2_vl"}))
    return folder


#: Processor-only repositories whose processors need torchvision under transformers 5:
#: (processor class, image processor type, model type, special tokens).
TORCHVISION_PROCESSORS = {
    "qwen2_5_vl": ("Qwen2_5_VLProcessor", "Qwen2VLImageProcessor", "qwen2_5_vl",
                   ["<|im_end|>", "<|vision_start|>", "<|vision_end|>", "<|image_pad|>",
                    "<|video_pad|>"]),
    "internvl": ("InternVLProcessor", "GotOcr2ImageProcessor", "internvl",
                 ["<|im_end|>", "<img>", "</img>", "<IMG_CONTEXT>", "<video>"]),
    "smolvlm2": ("SmolVLMProcessor", "SmolVLMImageProcessor", "smolvlm",
                 ["<end_of_utterance>", "<image>", "<fake_token_around_image>", "<global-img>"]),
}


def write_processor_only(folder: Path, family: str) -> Path:
    """The tokenizer and processor configs of a ``TORCHVISION_PROCESSORS`` family, no weights."""
    import json

    processor_class, image_processor, model_type, special = TORCHVISION_PROCESSORS[family]
    folder.mkdir(parents=True, exist_ok=True)
    _tokenizer(special, eos_token=special[0], pad_token=special[0]).save_pretrained(folder)
    (folder / "preprocessor_config.json").write_text(json.dumps(
        {"image_processor_type": image_processor, "processor_class": processor_class}))
    (folder / "processor_config.json").write_text(json.dumps({"processor_class": processor_class}))
    (folder / "config.json").write_text(json.dumps({"model_type": model_type}))
    return folder
