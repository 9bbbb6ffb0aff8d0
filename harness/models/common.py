"""Small helpers shared by model adapters: stop strings, chat messages, image modes and
missing packages.

No heavy imports here: adapters import torch or an SDK themselves.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from harness.types import Content, ImagePart

if TYPE_CHECKING:
    from PIL.Image import Image


def cut_at_stop(text: str, until: Sequence[str]) -> str:
    """Cut ``text`` before the first stop string found in it (the earliest position wins)."""
    cuts = [text.find(stop) for stop in until if stop and stop in text]
    return text[: min(cuts)] if cuts else text


def chat_messages(parts: Sequence[Content], image_entry: Callable[[ImagePart], dict[str, Any]],
                  system_prompt: str | None = None,
                  system_as_parts: bool = False) -> list[dict[str, Any]]:
    """The request as chat messages: an optional system message, then one user message.

    The user message's content lists text and image entries in prompt order (adjacent text
    joined); ``image_entry`` says how an image is written (a placeholder for a processor's
    chat template, a data URL for an OpenAI-style server). ``system_as_parts`` writes the
    system prompt as a list of text entries, as processors' templates expect.
    """
    content: list[dict[str, Any]] = []
    for part in parts:
        if isinstance(part, ImagePart):
            content.append(image_entry(part))
        elif content and content[-1]["type"] == "text":
            content[-1]["text"] += part.text
        else:
            content.append({"type": "text", "text": part.text})
    messages: list[dict[str, Any]] = []
    if system_prompt:
        messages.append({"role": "system", "content": [{"type": "text", "text": system_prompt}]
                         if system_as_parts else system_prompt})
    messages.append({"role": "user", "content": content})
    return messages


def to_rgb(image: Image) -> Image:
    """The image as RGB; transparent pixels become white, as transformers' processors do.

    A plain ``convert("RGB")`` would keep whatever colour hides under transparent pixels
    (often black), so a transparent PNG would look different from how a person sees it.
    """
    from PIL import Image as PILImage

    if image.mode == "RGB":
        return image
    if image.mode in {"RGBA", "LA", "PA"} or "transparency" in image.info:
        rgba = image.convert("RGBA")
        white = PILImage.new("RGBA", rgba.size, (255, 255, 255, 255))
        return PILImage.alpha_composite(white, rgba).convert("RGB")
    return image.convert("RGB")


#: Names transformers uses for a missing library -> the package to install.
_PIP_NAMES = {"torchvision": "torchvision", "num2words": "num2words", "pyav": "av", "av": "av",
              "sentencepiece": "sentencepiece", "protobuf": "protobuf", "opencv": "opencv-python",
              "cv2": "opencv-python", "timm": "timm", "einops": "einops", "decord": "decord",
              "torchcodec": "torchcodec", "soundfile": "soundfile", "librosa": "librosa"}
_MISSING_PATTERNS = (
    re.compile(r"requires the (\S+) library"),                 # transformers' backend errors
    re.compile(r"requires `([\w-]+)` to be installed"),         # AutoProcessor's video half
    re.compile(r"[Pp]ackage `([\w-]+)` is required"),           # SmolVLM's num2words
    re.compile(r"No module named '([\w-]+)"),
)


def missing_package(exc: BaseException) -> str | None:
    """The pip package an exception (or its causes) says is missing, or None."""
    seen: BaseException | None = exc
    while seen is not None:
        name = getattr(seen, "name", None) if isinstance(seen, ModuleNotFoundError) else None
        if name:
            return _PIP_NAMES.get(name.split(".")[0].lower(), name.split(".")[0])
        for pattern in _MISSING_PATTERNS:
            match = pattern.search(str(seen))
            if match:
                word = match.group(1).strip("`'\".,").lower()
                return _PIP_NAMES.get(word, word)
        seen = seen.__cause__ or seen.__context__
    return None


def install_hint(package: str) -> str:
    """How to install ``package``, in one clause."""
    if package == "torchvision":
        return ("install the torchvision build that matches your torch: `pip install torchvision` "
                "(CPU only: add `--index-url https://download.pytorch.org/whl/cpu`)")
    return f"install it with `pip install {package}`"
