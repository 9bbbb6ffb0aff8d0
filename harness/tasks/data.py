"""Load a task's documents through Hugging Face ``datasets``.

A local folder with ``<split>.jsonl`` (or ``<split>.csv``) files is read with the ``json`` (or
``csv``) builder; its relative ``image`` paths become absolute and the column is cast to
``datasets.Image()``. Any other ``dataset_path`` (a hub id, a folder in a Hugging Face format)
goes to ``datasets.load_dataset`` as is. Images are decoded here, one by one, so that a broken
or missing file becomes a one-line ``BenchError`` naming the item and the file.

This module knows nothing about prompts, models or judges.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from harness.errors import BenchError, did_you_mean
from harness.jsonl import read_objects
from harness.paths import PROJECT_ROOT
from harness.safety import inside

IMAGE_COLUMNS = ("image",)
#: Largest image decoded, in pixels: 40 million is a 7000x5700 photograph; 30000x30000 is a
#: decompression bomb of 2.7 GB.
MAX_IMAGE_PIXELS = 40_000_000


def resolve_local(dataset_path: str, yaml_source: str | None) -> Path | None:
    """The local folder ``dataset_path`` names (beside the YAML, then the project), or None."""
    candidates = [Path(dataset_path)]
    if yaml_source and not Path(dataset_path).is_absolute():
        candidates.insert(0, Path(yaml_source).parent / dataset_path)
        candidates.append(PROJECT_ROOT / dataset_path)
    for candidate in candidates:
        if candidate.is_dir():
            return candidate.resolve()
    return None


def _split_files(folder: Path, split: str) -> tuple[str, Path] | None:
    for builder, suffix in (("json", ".jsonl"), ("json", ".json"), ("csv", ".csv")):
        path = folder / f"{split}{suffix}"
        if path.is_file():
            return builder, path
    return None


#: File signatures of the image formats PIL reads that datasets ship in.
IMAGE_SIGNATURES = (b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff", b"GIF87a", b"GIF89a", b"BM",
                    b"II*\x00", b"MM\x00*")


def _head(path: str | None) -> bytes:
    try:
        with open(str(path), "rb") as handle:
            return handle.read(12)
    except OSError:
        return b""


def _decode_image(value: Any, doc_id: str, folder: Path | None) -> Any:
    """A PIL image from what ``datasets`` stores (path and/or bytes), or a precise error."""
    import io

    from PIL import Image, UnidentifiedImageError

    if value is None:
        raise BenchError(f"item {doc_id}: has no image; add one or drop the item")
    if hasattr(value, "mode") and hasattr(value, "size"):
        return value
    path = value.get("path") if isinstance(value, Mapping) else str(value)
    data = value.get("bytes") if isinstance(value, Mapping) else None
    shown = path or "<embedded bytes>"
    try:
        with warnings.catch_warnings():  # PIL warns of large images; _check_pixels says more
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            if data is not None:
                image = Image.open(io.BytesIO(data))
            elif not path:
                raise BenchError(f"item {doc_id}: its image has neither a path nor bytes; fix the item")
            else:
                if path and folder is not None and not Path(path).is_absolute():
                    path = str(folder / path)
                image = Image.open(path)
        _check_pixels(image, doc_id, shown)  # from the header, before any pixel is decoded
        image.load()
    except Image.DecompressionBombError:
        raise BenchError(f"item {doc_id}: image file {shown} has more pixels than the "
                         f"{MAX_IMAGE_PIXELS / 1e6:.0f} million allowed; shrink it") from None
    except FileNotFoundError:
        raise BenchError(f"item {doc_id}: image file {shown} not found; fix the 'image' path") from None
    except UnidentifiedImageError:
        # A known signature that PIL still cannot open is a damaged file, not a foreign format.
        head = bytes(data[:12]) if data is not None else _head(path)
        if any(head.startswith(magic) for magic in IMAGE_SIGNATURES) or head[8:12] == b"WEBP":
            raise BenchError(f"item {doc_id}: image file {shown} is damaged (its header is "
                             "cut short or corrupt); replace it") from None
        raise BenchError(f"item {doc_id}: image file {shown} is not an image in a known format "
                         "(PNG or JPEG); replace it") from None
    except (OSError, SyntaxError, ValueError) as exc:
        raise BenchError(f"item {doc_id}: image file {shown} is damaged ({exc}); replace it") from None
    return image.convert("RGB") if image.mode not in ("RGB", "L") else image


def _check_image_paths(dataset: Any, folder: Path) -> None:
    """Every ``image`` value a path inside the dataset folder (symlinks followed)."""
    for index, row in enumerate(dataset):
        value = row["image"]
        doc_id = str(row.get("id", index))
        if not value:
            continue
        if not isinstance(value, str):
            raise BenchError(f"item {doc_id}: 'image' must be a file path inside {folder}, "
                             f"got {value!r}; fix the item")
        inside(folder / value, folder, f"item {doc_id}: image file")


def _check_pixels(image: Any, doc_id: str, shown: str) -> None:
    width, height = image.size
    if width * height > MAX_IMAGE_PIXELS:
        raise BenchError(f"item {doc_id}: image file {shown} is {width}x{height} "
                         f"({width * height / 1e6:.0f} megapixels), more than the "
                         f"{MAX_IMAGE_PIXELS / 1e6:.0f} allowed; shrink it")


def _check_json_lines(path: Path) -> None:
    """Name the first line of a JSON Lines file that is not a JSON object.

    ``datasets`` reports a bad line only as "an error occurred while generating the dataset".
    """
    _, damaged = read_objects(path)
    if damaged:
        raise BenchError(f"{path}:{damaged[0].number}: {damaged[0].reason}; fix the line "
                         "(each line must be one JSON object)")


def load_split(
    dataset_path: str,
    split: str,
    *,
    dataset_name: str | None = None,
    dataset_kwargs: Mapping[str, Any] | None = None,
    yaml_source: str | None = None,
) -> list[dict[str, Any]]:
    """Every document of ``split`` as a dict, images decoded to PIL."""
    import datasets

    datasets.disable_progress_bars()
    datasets.logging.set_verbosity_error()
    folder = resolve_local(dataset_path, yaml_source)
    kwargs = dict(dataset_kwargs or {})
    image_folder: Path | None = None
    if folder is not None and (found := _split_files(folder, split)) is not None:
        builder, path = found
        if path.stat().st_size < 4096 and not path.read_text(encoding="utf-8",
                                                              errors="replace").strip():
            # datasets fails obscurely on an empty file; say what is wrong instead.
            raise BenchError(f"{dataset_path} ({split}): the split is empty; add items or "
                             "choose another split")
        if path.suffix == ".jsonl":
            _check_json_lines(path)
        try:
            dataset = datasets.load_dataset(builder, data_files={split: str(path)}, split=split,
                                            **kwargs)
        except Exception as exc:  # datasets raises many types for one malformed file
            raise BenchError(f"{path}: cannot be read as {builder} ({exc.__class__.__name__}: "
                             f"{str(exc).splitlines()[0] if str(exc) else ''}); fix the file") from None
        image_folder = folder
        if "image" in dataset.column_names:
            _check_image_paths(dataset, folder)
            # Absolute paths, then the Image feature (undecoded: we decode per item below).
            dataset = dataset.map(lambda row: {"image": str(folder / row["image"])
                                               if row["image"] else None})
            dataset = dataset.cast_column("image", datasets.Image(decode=False))
    elif folder is not None and (present := sorted(
            p.name for p in folder.iterdir() if p.suffix in (".jsonl", ".csv"))):
        # Our flat format, but not this split (a Hugging Face folder keeps its data deeper).
        raise BenchError(f"{folder}: no {split}.jsonl or {split}.csv (found {', '.join(present)}); "
                         "check the task's split names")
    else:
        try:
            dataset = datasets.load_dataset(str(folder or dataset_path), dataset_name, split=split,
                                            **kwargs)
        except ValueError as exc:
            raise BenchError(f"dataset '{dataset_path}': {str(exc).splitlines()[0]}") from None
        except FileNotFoundError:
            raise BenchError(f"dataset '{dataset_path}' not found locally or on the hub "
                             "(offline?); check dataset_path") from None
        except ConnectionError:
            raise BenchError(f"dataset '{dataset_path}' needs the Hugging Face hub, which cannot "
                             "be reached; download it or point dataset_path at a local copy") from None
    image_columns = [name for name, feature in dataset.features.items()
                     if isinstance(feature, datasets.Image)]
    for name in image_columns:
        dataset = dataset.cast_column(name, datasets.Image(decode=False))
    docs: list[dict[str, Any]] = []
    ids: set[str] = set()
    for index, row in enumerate(dataset):
        doc = dict(row)
        doc_id = str(doc.get("id", index))
        if doc_id in ids:
            raise BenchError(f"{dataset_path} ({split}): duplicate item id '{doc_id}'; ids must be unique")
        ids.add(doc_id)
        for name in image_columns:
            doc[name] = _decode_image(doc[name], doc_id, image_folder)
        docs.append(doc)
    if not docs:
        raise BenchError(f"{dataset_path} ({split}): the split is empty; add items or choose another split")
    return docs


def check_columns(docs: list[dict[str, Any]], needed: list[str], where: str) -> None:
    """Fail with a suggestion when a needed column is absent."""
    columns = set(docs[0]) if docs else set()
    for name in needed:
        if name not in columns:
            raise BenchError(f"{where}: the dataset has no column '{name}'.{did_you_mean(name, columns)}")
