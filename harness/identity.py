"""Model identity by content: what makes a result belong to the weights that made it.

A local checkpoint is identified by a hash of its bytes, not by its name or size, so that
overwriting ``model.pt`` (or a chat template) with another of the same size starts a new run.
Hashing 13 GB takes tens of seconds, so a file's digest is computed once and remembered in a
small JSON file (``file-hashes.json`` under the user cache dir, or the file that
``$VMB_HASH_CACHE`` names) keyed by (path, size, mtime_ns, ctime_ns, inode, device): any write
to a file changes its mtime and ctime (the kernel sets ctime; no tool can set it back), and a
file replaced by a rename has a new inode, so a stale digest is never reused.

Files from the Hugging Face hub cache are identified by their repository and commit (the
``snapshots/<commit>/`` folder they sit in), which names their content without reading it.

This module loads no model and imports no torch; adapters and judges build their identity
from it.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from harness.hashing import stable_hash
from harness.paths import user_cache_dir

#: An environment variable naming the remembered-digests file (tests point it at tmp).
HASH_CACHE_ENV = "VMB_HASH_CACHE"
#: Read in blocks this large: few system calls, little memory.
BLOCK_BYTES = 8 << 20
#: Remember at most this many files (the least recently used are forgotten first).
MAX_ENTRIES = 4096
_DIGEST_PREFIX = "sha256-"
#: Files in a model folder that shape nothing the model does.
_IGNORED_SUFFIXES = {".md", ".png", ".jpg", ".jpeg", ".gif", ".pdf", ".lock", ".tmp"}
_IGNORED_NAMES = {"LICENSE", "LICENSE.txt", "NOTICE", ".gitattributes"}


def hash_cache_path() -> Path:
    """The file that remembers digests: ``$VMB_HASH_CACHE``, else under the user cache dir."""
    override = os.environ.get(HASH_CACHE_ENV)
    return Path(override).expanduser() if override else user_cache_dir() / "file-hashes.json"


def hash_bytes(path: Path) -> str:
    """SHA-256 of a file's bytes, read in large blocks.

    SHA-256 rather than BLAKE2b: CPUs with SHA extensions (recent x86 and ARM) run it faster
    (docs/benchmarks.md), and it is the digest the hub names LFS files by.
    """
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(BLOCK_BYTES):
            digest.update(block)
    return _DIGEST_PREFIX + digest.hexdigest()


def _stat_key(path: Path) -> str:
    real = path.resolve()
    st = real.stat()
    return json.dumps([str(real), st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino, st.st_dev])


def _read_cache(cache: Path) -> dict[str, Any]:
    try:
        data = json.loads(cache.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    entries = data.get("entries") if isinstance(data, dict) else None
    return entries if isinstance(entries, dict) else {}


def _remember(cache: Path, key: str, digest: str) -> None:
    """Add one entry under a lock, replacing the file atomically; a failure only costs a rehash."""
    from filelock import FileLock, Timeout

    try:
        cache.parent.mkdir(parents=True, exist_ok=True)
        with FileLock(str(cache) + ".lock", timeout=30):
            entries = _read_cache(cache)
            entries[key] = {"digest": digest, "used": time.time()}
            if len(entries) > MAX_ENTRIES:
                newest = sorted(entries.items(), key=lambda kv: -float(kv[1].get("used", 0)))
                entries = dict(newest[:MAX_ENTRIES])
            with tempfile.NamedTemporaryFile("w", encoding="utf-8", dir=cache.parent,
                                             prefix=f".{cache.name}.", delete=False) as handle:
                json.dump({"schema": 1, "entries": entries}, handle)
            os.replace(handle.name, cache)
    except (OSError, Timeout):
        return


def file_digest(path: str | Path) -> str:
    """The content digest of a file, from the remembered digests when the file is unchanged."""
    path = Path(path).expanduser()
    key = _stat_key(path)
    cache = hash_cache_path()
    known = _read_cache(cache).get(key)
    if isinstance(known, dict) and str(known.get("digest", "")).startswith(_DIGEST_PREFIX):
        return str(known["digest"])
    digest = hash_bytes(path)
    if _stat_key(path) == key:  # not written to while we read it
        _remember(cache, key, digest)
    return digest


def hub_snapshot(path: str | Path) -> dict[str, str] | None:
    """``{"repo", "commit"}`` when ``path`` lies in a hub cache snapshot, else None.

    The hub cache keeps files in ``models--OWNER--NAME/snapshots/COMMIT/...``; the commit names
    their content. Only the folder layout is read, not the files.
    """
    parts = Path(path).expanduser().absolute().parts
    for index in range(len(parts) - 2, 0, -1):
        if parts[index] == "snapshots" and parts[index - 1].startswith(("models--", "datasets--")):
            repo = parts[index - 1].split("--", 1)[1].replace("--", "/")
            return {"repo": repo, "commit": parts[index + 1]}
    return None


def shapes_the_model(path: Path) -> bool:
    """Whether a file in a model folder can change answers (weights, configs, tokenizer, templates)."""
    return (not any(p.startswith(".") for p in path.parts) and path.name not in _IGNORED_NAMES
            and path.suffix.lower() not in _IGNORED_SUFFIXES)


def folder_digests(folder: str | Path, keep: Iterable[str] | None = None) -> dict[str, str]:
    """``{relative path: digest}`` of every file in ``folder`` that can change answers.

    ``keep`` limits it to these relative paths (where present). Sub-folders count too
    (``additional_chat_templates/``); hidden files and documentation do not.
    """
    root = Path(folder).expanduser()
    wanted = set(keep) if keep is not None else None
    digests: dict[str, str] = {}
    for path in sorted(root.rglob("*")):
        relative = path.relative_to(root)
        if not path.is_file() or not shapes_the_model(relative):
            continue
        if wanted is not None and relative.as_posix() not in wanted:
            continue
        digests[relative.as_posix()] = file_digest(path)
    return digests


def file_identity(path: str | Path) -> dict[str, Any]:
    """One file's identity: its hub repository and commit, or its content digest.

    Where the file lies is left out: a copy moved elsewhere is the same model.
    """
    path = Path(path).expanduser()
    snapshot = hub_snapshot(path)
    if snapshot is not None:
        return {"source": "hub", **snapshot, "file": path.name}
    return {"source": "local", "digest": file_digest(path)}


def folder_identity(folder: str | Path) -> dict[str, Any]:
    """A model folder's identity: hub repository and commit, or every relevant file's digest."""
    folder = Path(folder).expanduser()
    snapshot = hub_snapshot(folder / "config.json")
    if snapshot is not None:
        return {"source": "hub", **snapshot}
    return {"source": "local", "files": folder_digests(folder)}


def identity_digest(identity: Any) -> str:
    """A short stable name for an identity record, for folder names and leaderboard rows."""
    return stable_hash(identity, 16)


def hub_repo_identity(repo_id: str, revision: str | None = None, cache_dir: str | None = None,
                      probe_file: str = "config.json") -> dict[str, Any]:
    """A hub repository's identity: the commit its cached files come from (None if not cached)."""
    commit: str | None = None
    try:
        from huggingface_hub import try_to_load_from_cache

        for name in (probe_file, "tokenizer_config.json", "tokenizer.json"):
            cached = try_to_load_from_cache(repo_id, name, cache_dir=cache_dir, revision=revision)
            if isinstance(cached, str):
                snapshot = hub_snapshot(cached)
                commit = snapshot["commit"] if snapshot else None
                break
    except (ImportError, ValueError):  # not a valid repo id: nothing cached under it
        commit = None
    return {"source": "hub", "repo": repo_id, "revision": revision, "commit": commit}


def source_identity(source: str | Path, probe_file: str = "config.json") -> dict[str, Any]:
    """The identity of whatever a loader was given: a local folder, a local file, or a hub id."""
    path = Path(source).expanduser()
    if path.is_dir():
        return folder_identity(path)
    if path.is_file():
        return file_identity(path)
    return hub_repo_identity(str(source), probe_file=probe_file)
