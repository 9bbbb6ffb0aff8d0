"""MAGMA's files from outside: the checkpoint (a local file or a hub download, with mirrors)
and GPT-2's tokenizer with the image token added. This module builds no model.
"""

from __future__ import annotations

from pathlib import Path

from harness.errors import BenchError

IMAGE_TOKEN = "<|image|>"


def resolve_checkpoint(checkpoint: str | None, hub_repo: str, hub_file: str,
                       mirrors: tuple[str, ...] = ()) -> Path:
    """A local path for ``checkpoint``: the file itself, or a hub download when None/``hf://``."""
    if checkpoint and not checkpoint.startswith("hf://"):
        path = Path(checkpoint).expanduser()
        if path.is_dir():
            raise BenchError(f"checkpoint {path} is a folder; pass the checkpoint file in it "
                             "(MAGMA's model.pt): --model-args checkpoint=PATH")
        if not path.is_file():
            raise BenchError(f"checkpoint file {path} does not exist; pass --model-args checkpoint=PATH")
        return path
    repos = [hub_repo, *mirrors]
    if checkpoint:  # hf://owner/name/file.pt
        owner_name, _, hub_file = checkpoint[len("hf://"):].rpartition("/")
        repos = [owner_name]
    from huggingface_hub import hf_hub_download
    from huggingface_hub.errors import LocalEntryNotFoundError

    failures = []
    for repo in repos:
        try:
            return Path(hf_hub_download(repo_id=repo, filename=hub_file))
        except LocalEntryNotFoundError:  # no connection and no cached copy: mirrors fail too
            raise BenchError(f"cannot reach the Hugging Face hub to download {repo}/{hub_file} (offline?); "
                             "download it elsewhere and pass --model-args checkpoint=/path/to/model.pt") from None
        except Exception as exc:  # missing, gated, renamed: try the next mirror, then explain
            failures.append(f"{repo}: {type(exc).__name__}")
    raise BenchError(f"could not download {hub_file} ({'; '.join(failures)}); download it elsewhere and "
                     "pass --model-args checkpoint=/path/to/model.pt")


def load_tokenizer(tokenizer: str | None, vocab_rows: int):  # -> PreTrainedTokenizerBase
    """GPT-2's tokenizer (or a local folder) with ``<|image|>`` added, checked against the model."""
    from transformers import AutoTokenizer

    source = tokenizer or "gpt2"
    try:
        tok = AutoTokenizer.from_pretrained(source)
    except Exception as exc:
        where = "folder" if tokenizer else "GPT-2 tokenizer from the hub"
        raise BenchError(f"could not load the {where} {source!r} ({type(exc).__name__}); pass a Hugging "
                         "Face tokenizer folder with --model-args tokenizer=DIR") from None
    if IMAGE_TOKEN not in tok.get_vocab():
        tok.add_special_tokens({"additional_special_tokens": [IMAGE_TOKEN]})
    if len(tok) > vocab_rows:
        raise BenchError(f"tokenizer {source!r} has {len(tok)} tokens but the model embeds only "
                         f"{vocab_rows}; pass the tokenizer the checkpoint was trained with")
    if tok.eos_token_id is None:
        raise BenchError(f"tokenizer {source!r} has no end-of-text token; pass a GPT-2 style tokenizer")
    return tok
