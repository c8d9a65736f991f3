"""The CodeGen tokenizer on the `tokenizers` library (DESIGN §2, "Tokenizer").

GPT-2 byte-level BPE (50257 entries, `<|endoftext|>` = 50256) plus 38 ordinary added tokens for
runs of 31..2 spaces (50257..50286) and 9..2 tabs (50287..50294), as Salesforce built it
(`jaxformer/hf/sample.py`). Built from `tokenizer.json` when the folder has one, else from
`vocab.json` + `merges.txt` (+ `added_tokens.json`). Decoding is exact: no clean-up of spaces,
so `decode(encode(text)) == text` for every text.

`decode(ids, truncate_before_pattern=[...])` follows the seed's CodeGen tokenizer: cut at the second
line starting with `print`, then at the second line starting with `def`, then at the earliest match
of any pattern (regexes, multi-line mode).
"""

from __future__ import annotations

import json
import logging
import os
import re
from pathlib import Path
from typing import Iterable, Sequence

from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers, processors

from .hub import CheckpointError, resolve_checkpoint

log = logging.getLogger(__name__)

EOS_TOKEN = "<|endoftext|>"


def truncate_before(text: str, patterns: Sequence[str]) -> str:
    """The seed's truncation: 2nd `^print`, then 2nd `^def`, then the earliest of `patterns`."""
    prints = [m.start() for m in re.finditer(r"^print", text, re.MULTILINE)]
    if len(prints) > 1:
        text = text[: prints[1]]
    defs = [m.start() for m in re.finditer(r"^def", text, re.MULTILINE)]
    if len(defs) > 1:
        text = text[: defs[1]]
    cuts = [m.start() for p in patterns if (m := re.search(p, text, re.MULTILINE))]
    return text[: min(cuts)] if cuts else text


class CodeGenTokenizer:
    """Text <-> token ids. `vocab_size` counts real tokens only (the model has padding rows beyond)."""

    def __init__(self, tokenizer: Tokenizer, source: str = ""):
        self._tok = tokenizer
        self.source = source
        eos = tokenizer.token_to_id(EOS_TOKEN)
        if eos is None:
            raise CheckpointError(f"tokenizer {source or ''} has no {EOS_TOKEN} token; "
                                  "it is not a CodeGen / GPT-2 tokenizer")
        self.eos_id: int = eos
        self.pad_id: int = eos  # CodeGen pads with <|endoftext|>
        self.vocab_size: int = tokenizer.get_vocab_size(with_added_tokens=True)

    def encode(self, text: str) -> list[int]:
        return self._tok.encode(text, add_special_tokens=False).ids

    def encode_batch(self, texts: Iterable[str]) -> list[list[int]]:
        return [e.ids for e in self._tok.encode_batch(list(texts), add_special_tokens=False)]

    def decode(self, ids: Sequence[int], truncate_before_pattern: Sequence[str] | None = None) -> str:
        ids = ids.tolist() if hasattr(ids, "tolist") else list(ids)
        if ids and not 0 <= min(ids) <= max(ids) < self.vocab_size:
            bad = next(i for i in ids if not 0 <= i < self.vocab_size)
            raise ValueError(f"token id {bad} is outside the tokenizer's vocabulary of "
                             f"{self.vocab_size}; ids >= {self.vocab_size} are the model's padding "
                             "rows and must be masked before sampling")
        text = self._tok.decode(ids, skip_special_tokens=False)
        if truncate_before_pattern:
            text = truncate_before(text, truncate_before_pattern)
        return text

    def decode_batch(self, batch: Iterable[Sequence[int]]) -> list[str]:
        return [self.decode(ids) for ids in batch]

    def token(self, token_id: int) -> str | None:
        """The vocabulary entry of one id (byte-level form, e.g. 'Ġworld'), None when unknown."""
        return self._tok.id_to_token(token_id)

    def __len__(self) -> int:
        return self.vocab_size

    def __repr__(self) -> str:
        return f"CodeGenTokenizer({self.source!r}, vocab_size={self.vocab_size}, eos_id={self.eos_id})"


def from_bpe_files(vocab: dict[str, int] | str | Path, merges: list[tuple[str, str]] | str | Path,
                   added: dict[str, int] | None = None) -> Tokenizer:
    """A GPT-2 byte-level BPE `Tokenizer` plus ordinary added tokens at exactly the given ids."""
    if isinstance(vocab, (str, Path)):
        bpe = models.BPE.from_file(str(vocab), str(merges))
    else:
        bpe = models.BPE(vocab=vocab, merges=merges)
    tok = Tokenizer(bpe)
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tok.post_processor = processors.ByteLevel(trim_offsets=False)
    tok.add_special_tokens([AddedToken(EOS_TOKEN, special=True, normalized=False)])
    for content, token_id in sorted((added or {}).items(), key=lambda kv: kv[1]):
        tok.add_tokens([AddedToken(content, special=False, normalized=True)])
        if tok.token_to_id(content) != token_id:
            raise CheckpointError(
                f"added token {content!r} should have id {token_id} but lands at "
                f"{tok.token_to_id(content)}: added_tokens.json must number its tokens "
                f"consecutively after the {tok.get_vocab_size(with_added_tokens=False)} BPE entries")
    return tok


def _read_json(path: Path) -> dict:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise CheckpointError(f"{path}: cannot read ({type(e).__name__}: {e}); "
                              "the file is corrupt: download it again") from None
    if not isinstance(data, dict):
        raise CheckpointError(f"{path}: expected a JSON object; download the file again")
    return data


def load_tokenizer_folder(folder: str | os.PathLike) -> CodeGenTokenizer:
    """From `tokenizer.json`, else from `vocab.json` + `merges.txt` (+ `added_tokens.json`)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise CheckpointError(f"tokenizer folder {folder} does not exist")
    if (folder / "tokenizer.json").is_file():
        path = folder / "tokenizer.json"
        try:
            tok = Tokenizer.from_file(str(path))
        except Exception as e:  # tokenizers raises a bare Exception on malformed files
            raise CheckpointError(f"{path}: not a valid tokenizer.json ({e}); "
                                  "delete it and download it again") from None
        return CodeGenTokenizer(tok, str(folder))
    vocab, merges = folder / "vocab.json", folder / "merges.txt"
    missing = [p.name for p in (vocab, merges) if not p.is_file()]
    if missing:
        raise CheckpointError(
            f"{folder} has no tokenizer.json and no {' / '.join(missing)}; a CodeGen tokenizer "
            "needs tokenizer.json, or vocab.json + merges.txt (+ added_tokens.json)")
    _read_json(vocab)  # a clear message for a corrupt vocabulary before tokenizers' own
    added_path = folder / "added_tokens.json"
    added = {str(k): int(v) for k, v in _read_json(added_path).items()} if added_path.is_file() else None
    try:
        tok = from_bpe_files(vocab, merges, added)
    except CheckpointError:
        raise
    except Exception as e:
        raise CheckpointError(f"{folder}: cannot build the BPE tokenizer from vocab.json + merges.txt "
                              f"({e}); download both files again") from None
    return CodeGenTokenizer(tok, str(folder))


def load_tokenizer(name_or_path: str | os.PathLike, revision: str | None = None) -> CodeGenTokenizer:
    """The tokenizer of a checkpoint folder or Hub repo id (see `hub.resolve_checkpoint`)."""
    return load_tokenizer_folder(resolve_checkpoint(name_or_path, revision).folder)
