"""Fixtures shared by the model adapter tests: a fault-injecting chat server, and one tiny
MAGMA twin per session in a private cache."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.models.chat_server import Server, running_server


@pytest.fixture()
def server() -> Iterator[Server]:
    """A local chat-completions server that injects faults on request."""
    with running_server() as state:
        yield state


@pytest.fixture(scope="session")
def tiny_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    root = tmp_path_factory.mktemp("vmb-cache")
    previous = os.environ.get("VMB_CACHE")
    os.environ["VMB_CACHE"] = str(root)
    yield root
    if previous is None:
        os.environ.pop("VMB_CACHE", None)
    else:
        os.environ["VMB_CACHE"] = previous


@pytest.fixture(scope="session")
def tiny_files(tiny_cache: Path) -> tuple[Path, Path]:
    from harness.models.magma.tiny import ensure_tiny

    return ensure_tiny(0, tiny_cache)


@pytest.fixture(scope="session")
def tiny_model(tiny_files: tuple[Path, Path]):
    from harness.registry import load_model

    return load_model("magma-tiny")


@pytest.fixture(scope="session")
def make_image():
    """``make_image(seed, size=(w, h))`` -> an ImagePart of random RGB pixels."""
    import numpy as np
    from PIL import Image

    from harness.hashing import image_id
    from harness.types import ImagePart

    def build(seed: int, size: tuple[int, int] = (120, 90)) -> ImagePart:
        rng = np.random.default_rng(seed)
        image = Image.fromarray(rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8))
        return ImagePart(image_id(image), image)

    return build


@pytest.fixture(scope="session")
def tiny_vlm_folders(tmp_path_factory: pytest.TempPathFactory):
    """``tiny_vlm_folders(family)`` -> the folder of that family's tiny VLM, built once a session."""
    from tests.models.tiny_vlm_families import FAMILY_BUILDERS
    from tests.models.tiny_vlms import build_tiny_idefics3, build_tiny_llava

    builders = {"llava": build_tiny_llava, "idefics3": build_tiny_idefics3, **FAMILY_BUILDERS}
    built: dict[str, Path] = {}

    def folder(family: str) -> Path:
        if family not in built:
            built[family] = builders[family](tmp_path_factory.mktemp(f"tiny-{family}"))
        return built[family]

    return folder
