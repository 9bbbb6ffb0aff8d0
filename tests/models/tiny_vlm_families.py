"""Six more tiny random VLM families, built offline like those in ``tiny_vlms``.

LLaVA-NeXT, Idefics2, Gemma 3, Mllama, Aya Vision and PaliGemma: each builder trains a tiny
tokenizer here (byte-level BPE, or Gemma's BPE for the Gemma families), builds the family's
own processor with its PIL image processor (no torchvision) and a model with random weights
from its config classes, and saves the lot to a folder in the hub's file formats. Sizes are
the smallest each architecture accepts, so a forward pass takes milliseconds.

Test helper only: nothing in ``harness`` imports it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tests.models.tiny_vlms import _CORPUS, _LLAVA_TEMPLATE, _tokenizer

_TINY_TEXT = {"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2,
              "num_attention_heads": 2, "num_key_value_heads": 2, "max_position_embeddings": 512}
_TINY_VISION = {"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2,
                "num_attention_heads": 2, "image_size": 28, "patch_size": 14}

_GEMMA_TEMPLATE = (
    "{{ bos_token }}{% for message in messages %}<start_of_turn>{{ message['role'] }}\n"
    "{% for item in message['content'] %}{% if item['type'] == 'image' %}<start_of_image>"
    "{% else %}{{ item['text'] }}{% endif %}{% endfor %}<end_of_turn>\n{% endfor %}"
    "{% if add_generation_prompt %}<start_of_turn>model\n{% endif %}"
)
_LLAMA3_TEMPLATE = (
    "{{ bos_token }}{% for message in messages %}<|start_header_id|>{{ message['role'] }}"
    "<|end_header_id|>\n\n{% for item in message['content'] %}{% if item['type'] == 'image' %}"
    "<|image|>{% else %}{{ item['text'] }}{% endif %}{% endfor %}<|eot_id|>{% endfor %}"
    "{% if add_generation_prompt %}<|start_header_id|>assistant<|end_header_id|>\n\n{% endif %}"
)
_COHERE_TEMPLATE = (
    "{{ bos_token }}{% for message in messages %}<|START_OF_TURN_TOKEN|>"
    "{% if message['role'] == 'user' %}<|USER_TOKEN|>{% else %}<|SYSTEM_TOKEN|>{% endif %}"
    "{% for item in message['content'] %}{% if item['type'] == 'image' %}<image>"
    "{% else %}{{ item['text'] }}{% endif %}{% endfor %}<|END_OF_TURN_TOKEN|>{% endfor %}"
    "{% if add_generation_prompt %}<|START_OF_TURN_TOKEN|><|CHATBOT_TOKEN|>{% endif %}"
)


def _gemma_tokenizer(special: list[str], **named: Any):  # noqa: ANN202
    """A ``GemmaTokenizer`` (Gemma's normaliser and BPE, BOS added) over a vocabulary trained here."""
    from tokenizers import AddedToken, Tokenizer, models, normalizers, pre_tokenizers, trainers
    from transformers import GemmaTokenizer

    base = ["<pad>", "<eos>", "<bos>", "<unk>", "<mask>"]
    core = Tokenizer(models.BPE(unk_token="<unk>"))
    core.normalizer = normalizers.Replace(" ", "\u2581")
    # Learn merges within words only, as Gemma's vocabulary has them.
    core.pre_tokenizer = pre_tokenizers.Metaspace(replacement="\u2581", prepend_scheme="never")
    alphabet = sorted(set("".join(_CORPUS).replace(" ", "\u2581")) | set("\n\u2581"))
    core.train_from_iterator(_CORPUS * 4, trainers.BpeTrainer(
        vocab_size=300, special_tokens=base + special, initial_alphabet=alphabet))
    data = json.loads(core.to_str())
    merges = [tuple(m) if isinstance(m, list) else tuple(m.split(" "))
              for m in data["model"]["merges"]]
    tokenizer = GemmaTokenizer(vocab=data["model"]["vocab"], merges=merges, add_bos_token=True,
                               **named)
    tokenizer.add_tokens([AddedToken(t, special=True, normalized=False) for t in special],
                         special_tokens=True)
    return tokenizer


def _save(model: Any, processor: Any, folder: Path) -> Path:
    import torch

    # Some families start the image path at zero (Mllama's cross-attention gates, Gemma 3's
    # projector), which would make images irrelevant: give every all-zero tensor small noise.
    with torch.no_grad():
        for parameter in model.parameters():
            if not parameter.any():
                parameter.normal_(0.0, 0.02)
    model.save_pretrained(folder)
    processor.save_pretrained(folder)
    return folder


def build_tiny_llava_next(folder: Path, seed: int = 0) -> Path:
    """LLaVA-NeXT (anyres grid of one 28 px tile plus the base image) on a 2-layer Llama."""
    import torch
    from transformers import (
        CLIPVisionConfig,
        LlamaConfig,
        LlavaNextConfig,
        LlavaNextForConditionalGeneration,
        LlavaNextProcessor,
    )
    from transformers.models.llava_next.image_processing_pil_llava_next import (
        LlavaNextImageProcessorPil,
    )

    tokenizer = _tokenizer(["<s>", "</s>", "<pad>", "<image>"], add_bos="<s>",
                           bos_token="<s>", eos_token="</s>", pad_token="<pad>")
    image_processor = LlavaNextImageProcessorPil(
        size={"shortest_edge": 28}, crop_size={"height": 28, "width": 28},
        image_grid_pinpoints=[[28, 28]])
    processor = LlavaNextProcessor(image_processor=image_processor, tokenizer=tokenizer,
                                   patch_size=14, vision_feature_select_strategy="default",
                                   num_additional_image_tokens=1, chat_template=_LLAVA_TEMPLATE)
    config = LlavaNextConfig(
        vision_config=CLIPVisionConfig(**_TINY_VISION),
        text_config=LlamaConfig(vocab_size=len(tokenizer), **_TINY_TEXT,
                                pad_token_id=tokenizer.pad_token_id,
                                bos_token_id=tokenizer.bos_token_id,
                                eos_token_id=tokenizer.eos_token_id),
        image_token_index=tokenizer.convert_tokens_to_ids("<image>"), image_grid_pinpoints=[[28, 28]],
        vision_feature_layer=-1, vision_feature_select_strategy="default")
    torch.manual_seed(seed)
    return _save(LlavaNextForConditionalGeneration(config), processor, folder)


def build_tiny_idefics2(folder: Path, seed: int = 0) -> Path:
    """Idefics2 (SigLIP + perceiver resampler of 2 latents) on a 2-layer Mistral."""
    import torch
    from transformers import Idefics2Config, Idefics2ForConditionalGeneration, Idefics2Processor
    from transformers.models.idefics2.image_processing_pil_idefics2 import (
        Idefics2ImageProcessorPil,
    )

    from tests.models.tiny_vlms import _IDEFICS_TEMPLATE

    tokenizer = _tokenizer(["<s>", "</s>", "<pad>", "<image>", "<fake_token_around_image>",
                            "<end_of_utterance>"], add_bos="<s>",
                           bos_token="<s>", eos_token="</s>", pad_token="<pad>")
    image_processor = Idefics2ImageProcessorPil(
        do_image_splitting=False, size={"shortest_edge": 28, "longest_edge": 28})
    processor = Idefics2Processor(image_processor=image_processor, tokenizer=tokenizer,
                                  image_seq_len=2, chat_template=_IDEFICS_TEMPLATE)
    config = Idefics2Config(
        vision_config=dict(_TINY_VISION),
        perceiver_config={"hidden_size": 32, "resampler_n_latents": 2, "resampler_depth": 1,
                          "resampler_n_heads": 2, "resampler_head_dim": 16,
                          "num_key_value_heads": 1},
        text_config={"model_type": "mistral", "vocab_size": len(tokenizer), **_TINY_TEXT,
                     "pad_token_id": tokenizer.pad_token_id,
                     "bos_token_id": tokenizer.bos_token_id,
                     "eos_token_id": tokenizer.eos_token_id},
        image_token_id=tokenizer.convert_tokens_to_ids("<image>"))
    torch.manual_seed(seed)
    return _save(Idefics2ForConditionalGeneration(config), processor, folder)


def build_tiny_gemma3(folder: Path, seed: int = 0) -> Path:
    """Gemma 3 (SigLIP, 28 px images pooled to 1 soft token) on a 2-layer Gemma 3 text model."""
    import torch
    from transformers import Gemma3Config, Gemma3ForConditionalGeneration, Gemma3Processor
    from transformers.models.gemma3.image_processing_pil_gemma3 import Gemma3ImageProcessorPil

    tokenizer = _gemma_tokenizer(
        ["<start_of_image>", "<end_of_image>", "<image_soft_token>", "<start_of_turn>",
         "<end_of_turn>"],
        extra_special_tokens={"image_token": "<image_soft_token>",
                              "boi_token": "<start_of_image>", "eoi_token": "<end_of_image>"})
    image_processor = Gemma3ImageProcessorPil(size={"height": 28, "width": 28})
    processor = Gemma3Processor(image_processor=image_processor, tokenizer=tokenizer,
                                image_seq_length=1, chat_template=_GEMMA_TEMPLATE)
    config = Gemma3Config(
        text_config={**_TINY_TEXT, "vocab_size": len(tokenizer), "head_dim": 16,
                     "sliding_window": 512, "pad_token_id": tokenizer.pad_token_id,
                     "bos_token_id": tokenizer.bos_token_id,
                     "eos_token_id": tokenizer.eos_token_id},
        vision_config=dict(_TINY_VISION), mm_tokens_per_image=1,
        boi_token_index=tokenizer.convert_tokens_to_ids("<start_of_image>"),
        eoi_token_index=tokenizer.convert_tokens_to_ids("<end_of_image>"),
        image_token_index=tokenizer.convert_tokens_to_ids("<image_soft_token>"))
    torch.manual_seed(seed)
    return _save(Gemma3ForConditionalGeneration(config), processor, folder)


def build_tiny_mllama(folder: Path, seed: int = 0) -> Path:
    """Mllama (Llama 3.2 Vision: tiled vision encoder, cross-attention layer 1) at 28 px, 1 tile."""
    import torch
    from transformers import MllamaConfig, MllamaForConditionalGeneration, MllamaProcessor
    from transformers.models.mllama.image_processing_pil_mllama import MllamaImageProcessorPil

    tokenizer = _tokenizer(["<|begin_of_text|>", "<|eot_id|>", "<|finetune_right_pad_id|>",
                            "<|image|>", "<|python_tag|>", "<|start_header_id|>",
                            "<|end_header_id|>"], add_bos="<|begin_of_text|>",
                           bos_token="<|begin_of_text|>", eos_token="<|eot_id|>",
                           pad_token="<|finetune_right_pad_id|>")
    image_processor = MllamaImageProcessorPil(size={"height": 28, "width": 28}, max_image_tiles=1)
    processor = MllamaProcessor(image_processor=image_processor, tokenizer=tokenizer,
                                chat_template=_LLAMA3_TEMPLATE)
    config = MllamaConfig(
        vision_config={"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2,
                       "num_global_layers": 1, "attention_heads": 2, "image_size": 28,
                       "patch_size": 14, "max_num_tiles": 1, "vision_output_dim": 64,
                       "intermediate_layers_indices": [0],
                       "supported_aspect_ratios": [[1, 1]]},
        text_config={"vocab_size": len(tokenizer), "hidden_size": 32, "intermediate_size": 64,
                     "num_hidden_layers": 2, "num_attention_heads": 2, "num_key_value_heads": 2,
                     "max_position_embeddings": 512, "cross_attention_layers": [1],
                     "pad_token_id": tokenizer.pad_token_id,
                     "bos_token_id": tokenizer.bos_token_id,
                     "eos_token_id": tokenizer.eos_token_id},
        image_token_index=tokenizer.convert_tokens_to_ids("<|image|>"))
    torch.manual_seed(seed)
    return _save(MllamaForConditionalGeneration(config), processor, folder)


def build_tiny_aya_vision(folder: Path, seed: int = 0) -> Path:
    """Aya Vision (SigLIP + pixel-shuffle projector) on a 2-layer Cohere 2, one 28 px tile."""
    import torch
    from transformers import (
        AyaVisionConfig,
        AyaVisionForConditionalGeneration,
        AyaVisionProcessor,
    )
    from transformers.models.got_ocr2.image_processing_pil_got_ocr2 import (
        GotOcr2ImageProcessorPil,
    )

    tokenizer = _tokenizer(["<BOS_TOKEN>", "<|END_OF_TURN_TOKEN|>", "<PAD>", "<image>",
                            "<|START_OF_IMG|>", "<|END_OF_IMG|>", "<|IMG_PATCH|>",
                            "<|IMG_LINE_BREAK|>", "<|START_OF_TURN_TOKEN|>", "<|USER_TOKEN|>",
                            "<|CHATBOT_TOKEN|>", "<|SYSTEM_TOKEN|>", "TILE", "TILE_GLOBAL"],
                           add_bos="<BOS_TOKEN>", bos_token="<BOS_TOKEN>",
                           eos_token="<|END_OF_TURN_TOKEN|>", pad_token="<PAD>")
    image_processor = GotOcr2ImageProcessorPil(size={"height": 28, "width": 28},
                                               crop_to_patches=False)
    processor = AyaVisionProcessor(image_processor=image_processor, tokenizer=tokenizer,
                                   patch_size=14, img_size=28, downsample_factor=2,
                                   chat_template=_COHERE_TEMPLATE)
    config = AyaVisionConfig(
        vision_config={"model_type": "siglip_vision_model", **_TINY_VISION},
        text_config={"model_type": "cohere2", "vocab_size": len(tokenizer), **_TINY_TEXT,
                     "head_dim": 16, "sliding_window": 512,
                     "pad_token_id": tokenizer.pad_token_id,
                     "bos_token_id": tokenizer.bos_token_id,
                     "eos_token_id": tokenizer.eos_token_id},
        downsample_factor=2, adapter_layer_norm_eps=1e-6,
        image_token_index=tokenizer.convert_tokens_to_ids("<|IMG_PATCH|>"))
    torch.manual_seed(seed)
    return _save(AyaVisionForConditionalGeneration(config), processor, folder)


def build_tiny_paligemma(folder: Path, seed: int = 0) -> Path:
    """PaliGemma (SigLIP + linear projector, prefix-LM attention) on a 2-layer Gemma."""
    import torch
    from transformers import (
        PaliGemmaConfig,
        PaliGemmaForConditionalGeneration,
        PaliGemmaProcessor,
    )
    from transformers.models.siglip.image_processing_pil_siglip import SiglipImageProcessorPil

    tokenizer = _gemma_tokenizer(["<image>"])
    image_processor = SiglipImageProcessorPil(size={"height": 28, "width": 28})
    image_processor.image_seq_length = 4  # (28 / 14) ** 2 patches, one token each
    processor = PaliGemmaProcessor(image_processor=image_processor, tokenizer=tokenizer)
    config = PaliGemmaConfig(
        vision_config={**_TINY_VISION, "projection_dim": 32},
        text_config={"model_type": "gemma", "vocab_size": len(tokenizer), **_TINY_TEXT,
                     "head_dim": 16, "pad_token_id": tokenizer.pad_token_id,
                     "bos_token_id": tokenizer.bos_token_id,
                     "eos_token_id": tokenizer.eos_token_id},
        projection_dim=32, image_token_index=tokenizer.convert_tokens_to_ids("<image>"))
    torch.manual_seed(seed)
    return _save(PaliGemmaForConditionalGeneration(config), processor, folder)


FAMILY_BUILDERS = {"llava_next": build_tiny_llava_next, "idefics2": build_tiny_idefics2,
                   "gemma3": build_tiny_gemma3, "mllama": build_tiny_mllama,
                   "aya_vision": build_tiny_aya_vision, "paligemma": build_tiny_paligemma}
