"""Small helpers shared by model adapters: stop strings, image modes, missing packages (no heavy imports)."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from PIL.Image import Image


def cut_at_stop(text: str, until: Sequence[str]) -> str:
    """Cut ``text`` before the first stop string found in it (the earliest position wins)."""
    cuts = [text.find(stop) for stop in until if stop and stop in text]
    return text[: min(cuts)] if cuts else text


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
