"""Identity by content: file digests remembered by file version, folder and hub identities."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from harness import identity
from harness.identity import (
    HASH_CACHE_ENV,
    file_digest,
    file_identity,
    folder_identity,
    hash_cache_path,
    hub_snapshot,
)


@pytest.fixture()
def hashes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> list[Path]:
    """Count the files actually read; remembered digests go to this test's own file."""
    monkeypatch.setenv(HASH_CACHE_ENV, str(tmp_path / "cache" / "digests.json"))
    reads: list[Path] = []
    real = identity.hash_bytes

    def counting(path: Path) -> str:
        reads.append(Path(path))
        return real(path)

    monkeypatch.setattr(identity, "hash_bytes", counting)
    return reads


def test_a_file_is_hashed_once_per_version(tmp_path: Path, hashes: list[Path]) -> None:
    weights = tmp_path / "model.pt"
    weights.write_bytes(b"a" * 1000)
    first = file_digest(weights)
    assert file_digest(weights) == first and len(hashes) == 1  # remembered
    assert hash_cache_path() == tmp_path / "cache" / "digests.json"
    assert first in hash_cache_path().read_text()
    # Same size, and the old mtime put back: the content still decides.
    stat = weights.stat()
    weights.write_bytes(b"b" * 1000)
    os.utime(weights, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    second = file_digest(weights)
    assert second != first and len(hashes) == 2
    weights.write_bytes(b"a" * 1000)  # the old bytes again: the old digest
    assert file_digest(weights) == first


def test_a_damaged_cache_file_costs_a_rehash_only(tmp_path: Path, hashes: list[Path]) -> None:
    weights = tmp_path / "model.pt"
    weights.write_bytes(b"weights")
    digest = file_digest(weights)
    hash_cache_path().write_text("{not json")
    assert file_digest(weights) == digest and len(hashes) == 2
    assert json.loads(hash_cache_path().read_text())["entries"]  # rewritten whole


def test_a_folder_is_identified_by_what_shapes_the_model(tmp_path: Path, hashes: list[Path]) -> None:
    folder = tmp_path / "model"
    (folder / "additional_chat_templates").mkdir(parents=True)
    for name in ("model.safetensors", "config.json", "tokenizer.json", "chat_template.jinja",
                 "generation_config.json", "additional_chat_templates/tools.jinja", "README.md",
                 ".gitattributes"):
        (folder / name).write_text(f"content of {name}")
    found = folder_identity(folder)
    assert found["source"] == "local"
    assert sorted(found["files"]) == ["additional_chat_templates/tools.jinja", "chat_template.jinja",
                                      "config.json", "generation_config.json",
                                      "model.safetensors", "tokenizer.json"]
    (folder / "README.md").write_text("edited docs")
    assert folder_identity(folder) == found
    (folder / "chat_template.jinja").write_text("content of chat_template.jinjA")
    assert folder_identity(folder) != found


def test_hub_files_are_identified_by_commit_without_reading(tmp_path: Path, hashes: list[Path]) -> None:
    snapshot = tmp_path / "hub" / "models--Aleph-Alpha--magma-research" / "snapshots" / "abc123"
    snapshot.mkdir(parents=True)
    (snapshot / "model.pt").write_bytes(b"x")
    assert hub_snapshot(snapshot / "model.pt") == {"repo": "Aleph-Alpha/magma-research",
                                                   "commit": "abc123"}
    assert file_identity(snapshot / "model.pt") == {
        "source": "hub", "repo": "Aleph-Alpha/magma-research", "commit": "abc123",
        "file": "model.pt"}
    assert folder_identity(snapshot)["commit"] == "abc123"
    assert hashes == [] and hub_snapshot(tmp_path / "model.pt") is None
