"""Resolve a model name to a local checkpoint folder (docs/design.md §2, "Weights").

A name is a local folder in the Hugging Face layout when such a path exists (or when it can only be
a path: absolute, `./`, `~`); otherwise it is a Hub repo id, fetched with
`huggingface_hub.snapshot_download` into the normal HF cache, so `HF_HOME`, `HF_HUB_CACHE` and
`HF_HUB_OFFLINE` work as everywhere else. Only the files a checkpoint needs are fetched, and only
one weights format (safetensors when the repo has it, else `pytorch_model*.bin`). Once cached, a
repo loads with no network at all.
"""

from __future__ import annotations

import fnmatch
import logging
import os
import re
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)


class CheckpointError(ValueError):
    """A checkpoint that cannot be found or read; the message names the file and the fix."""


CONFIG_FILE = "config.json"
TOKENIZER_FILES = ("tokenizer.json", "vocab.json", "merges.txt", "added_tokens.json",
                   "special_tokens_map.json", "tokenizer_config.json")
# Weights formats in order of preference: (index file, single file, shard glob).
WEIGHT_FORMATS = (
    ("model.safetensors.index.json", "model.safetensors", "model-*-of-*.safetensors"),
    ("pytorch_model.bin.index.json", "pytorch_model.bin", "pytorch_model-*-of-*.bin"),
)
_REPO_ID = re.compile(r"^[A-Za-z0-9][\w.-]*(/[\w.-]+)?$")
_COMMIT = re.compile(r"^[0-9a-f]{40}$")


@dataclass(frozen=True)
class Checkpoint:
    """Where a checkpoint lives: a local folder, and the Hub repo/commit it came from (if any)."""

    folder: Path
    repo_id: str | None = None
    commit: str | None = None  # the resolved commit of a Hub snapshot

    @property
    def source(self) -> str:
        return self.repo_id or str(self.folder)


def download_patterns(repo_files: list[str]) -> list[str]:
    """The allow_patterns for one repo: config, tokenizer files and ONE weights format."""
    patterns = [CONFIG_FILE, *TOKENIZER_FILES]
    for index, single, shards in WEIGHT_FORMATS:
        if any(fnmatch.fnmatch(f, p) for f in repo_files for p in (index, single, shards)):
            return patterns + [index, single, shards]
    return patterns  # no weights: the loader reports it, naming the folder


# The released checkpoints (CodeGen paper, Table 1): Salesforce/codegen-{size}-{data} on the Hub.
RELEASED = tuple(f"codegen-{size}-{data}" for size in ("350M", "2B", "6B", "16B") for data in ("nl", "multi", "mono"))


def hub_repo_id(name: str) -> str:
    """The Hub repo id of `name`: a released checkpoint's bare name (codegen-350M-mono) gets its
    organisation (Salesforce/codegen-350M-mono); anything else is returned as given."""
    return f"Salesforce/{name}" if name in RELEASED else name


def _looks_like_path(name: str) -> bool:
    """True when `name` can only be a file-system path, never a Hub repo id ("org/name")."""
    return (name.startswith(("/", "./", "../", "~")) or name in (".", "..") or name.endswith("/")
            or name.count("/") > 1 or not _REPO_ID.match(name))


def hub_offline() -> bool:
    """HF_HUB_OFFLINE as huggingface_hub read it at import, or as the environment says now."""
    from huggingface_hub import constants

    env = os.environ.get("HF_HUB_OFFLINE", "").upper() in ("1", "ON", "YES", "TRUE")
    return bool(constants.HF_HUB_OFFLINE) or env


def resolve_checkpoint(name_or_path: str | os.PathLike, revision: str | None = None) -> Checkpoint:
    """A local folder as given, else a Hub repo id resolved to its snapshot folder in the HF cache."""
    name = os.fspath(name_or_path)
    path = Path(name).expanduser()
    if path.exists():
        if not path.is_dir():
            raise CheckpointError(
                f"{path} is a file; pass the checkpoint folder that holds config.json and the weights")
        if revision is not None:
            log.warning("revision=%r ignored: %s is a local folder", revision, path)
        return Checkpoint(path.resolve())
    if isinstance(name_or_path, Path) or _looks_like_path(name):
        raise CheckpointError(
            f"checkpoint folder {name} does not exist; pass an existing folder with config.json and "
            "the weights, or a Hub repo id such as Salesforce/codegen-350M-mono")
    return _snapshot(hub_repo_id(name), revision)


def hub_reachable(timeout_s: float = 5.0) -> bool:
    """The Hugging Face Hub's host accepts a TCP connection (False at once without DNS or network)."""
    from huggingface_hub import constants

    return _endpoint_reachable(constants.ENDPOINT, timeout_s)


def _endpoint_reachable(endpoint: str, timeout_s: float = 5.0) -> bool:
    """A TCP connection to the Hub's host opens. Fails fast where DNS or the network is absent
    (huggingface_hub itself retries with back-off for half a minute before giving up)."""
    import socket
    from urllib.parse import urlparse

    url = urlparse(endpoint)
    try:
        socket.create_connection((url.hostname, url.port or (443 if url.scheme == "https" else 80)),
                                 timeout=timeout_s).close()
        return True
    except OSError:
        return False


def _snapshot(repo_id: str, revision: str | None) -> Checkpoint:
    import huggingface_hub
    from huggingface_hub import constants
    from huggingface_hub.errors import (
        GatedRepoError,
        LocalEntryNotFoundError,
        RepositoryNotFoundError,
        RevisionNotFoundError,
    )

    def not_available(reason: str) -> CheckpointError:
        return CheckpointError(
            f"{repo_id}{'@' + revision if revision else ''} is neither a local folder nor in the "
            f"Hugging Face cache at {constants.HF_HUB_CACHE}, and {reason}. Download it where there "
            f"is network (`hf download {repo_id}`) and point HF_HOME (or HF_HUB_CACHE) at that "
            "cache, or pass a local checkpoint folder (model.path=DIR in the apps, --model DIR for "
            "python -m codegen_model, the folder itself to from_pretrained)")

    files = None
    offline = hub_offline()
    if not offline and not _endpoint_reachable(constants.ENDPOINT):
        log.info("Hub endpoint %s unreachable; trying the local cache for %s", constants.ENDPOINT, repo_id)
    elif not offline:
        try:
            files = huggingface_hub.list_repo_files(repo_id, revision=revision)
        except (RepositoryNotFoundError, GatedRepoError) as e:
            raise CheckpointError(
                f"{repo_id} is not a local folder, and the Hub has no public repo of that name "
                f"({type(e).__name__}); check the spelling or log in with `hf auth login`") from None
        except RevisionNotFoundError:
            raise CheckpointError(f"{repo_id} has no revision {revision!r} on the Hub; "
                                  "pass a branch, tag or commit that exists") from None
        except Exception as e:  # no network, proxy, Hub down: fall back to the cache
            log.info("Hub unreachable for %s (%s: %s); trying the local cache", repo_id, type(e).__name__, e)
    try:
        if files is None:
            folder = huggingface_hub.snapshot_download(
                repo_id, revision=revision, allow_patterns=[CONFIG_FILE], local_files_only=True)
        else:
            folder = huggingface_hub.snapshot_download(
                repo_id, revision=revision, allow_patterns=download_patterns(files))
    except LocalEntryNotFoundError:
        reason = "HF_HUB_OFFLINE is set" if offline else "the Hub cannot be reached"
        raise not_available(reason) from None
    except Exception as e:
        raise CheckpointError(f"downloading {repo_id} failed ({type(e).__name__}: {e}); "
                              "check the network or pass a local checkpoint folder (model.path=DIR)") from None
    folder = Path(folder)
    commit = folder.name if _COMMIT.match(folder.name) else None
    log.info("%s resolved to %s", repo_id, folder)
    return Checkpoint(folder, repo_id=repo_id, commit=commit)
