"""The CodeGen tokenizer on the `tokenizers` library (docs/design.md §2, "Tokenizer"), with the
documented `CodeGenTokenizer` API.

GPT-2 byte-level BPE (50257 entries, `<|endoftext|>` = 50256) plus 38 ordinary added tokens for
runs of 31..2 spaces (50257..50286) and 9..2 tabs (50287..50294), as Salesforce built it
(`jaxformer/hf/sample.py`). Built from `tokenizer.json` when the folder has one, else from
`vocab.json` + `merges.txt` (+ `added_tokens.json`); `tokenizer_config.json` and
`special_tokens_map.json` supply the special tokens, `add_prefix_space` and `model_max_length`.
Decoding is exact: no clean-up of spaces, so `decode(encode(text)) == text` for every text
(transformers 5 likewise never cleans up spaces for this BPE tokenizer).

The public surface follows the Transformers documentation of `CodeGenTokenizer` and the
tokenizer call it inherits (source: transformers' `tokenization_codegen.py` and
`tokenization_utils_base.py`), checked id for id against transformers
(tests/integration/test_api_tokenizer.py). `decode(ids, truncate_before_pattern=[...])` follows the
seed's CodeGen tokenizer: cut at the second line starting with `print`, then at the second line
starting with `def`, then at the earliest match of any pattern (regexes, multi-line mode).
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
VERY_LARGE = int(1e30)  # transformers' model_max_length when the files give none


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


class BatchEncoding(dict):
    """What `CodeGenTokenizer.__call__` returns: a dict (`input_ids`, `token_type_ids` when asked,
    `attention_mask`) whose keys are also attributes; `.to(device)` moves tensors (return_tensors="pt")."""

    def __getattr__(self, name: str):
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name) from None

    def to(self, device) -> "BatchEncoding":
        return BatchEncoding({k: v.to(device) if hasattr(v, "to") else v for k, v in self.items()})


def _as_id_list(ids) -> list[int]:
    """One sequence of ids from an int, a list, a 1-D tensor or a numpy array."""
    if hasattr(ids, "tolist"):
        ids = ids.tolist()
    if isinstance(ids, int):
        return [ids]
    return [int(i) for i in ids]


_PADDING = {True: "longest", "longest": "longest", "max_length": "max_length", False: None, None: None,
            "do_not_pad": None}
_TRUNCATION = {True: True, "longest_first": True, "only_first": True, False: False, "do_not_truncate": False,
               None: None}


# transformers' tokenizer-call arguments accepted at their defaults only (they change nothing then).
_CALL_DEFAULTS = {"stride": 0, "is_split_into_words": False, "return_overflowing_tokens": False,
                  "return_special_tokens_mask": False, "return_offsets_mapping": False,
                  "text_target": None, "text_pair_target": None}


class CodeGenTokenizer:
    """Text <-> token ids, with the documented CodeGenTokenizer API.

    `len(tokenizer)` (50295 for the released tokenizer) counts every token, added ones included;
    `vocab_size` is the same number here (transformers reports the 50257 BPE entries only): the
    harness uses it as the bound on sampled ids (the model has padding rows beyond it).
    Special tokens: bos = eos = unk = `<|endoftext|>`; no pad token unless the files or the caller
    set one (`tokenizer.pad_token = tokenizer.eos_token`, as transformers requires for padding).
    `eos_id` / `pad_id` are the harness's ids (pad_id = eos, CodeGen's padding in the engine).
    """

    model_input_names = ["input_ids", "attention_mask"]

    def __init__(self, tokenizer: Tokenizer, source: str = "", *, add_prefix_space: bool = False,
                 bos_token: str | None = EOS_TOKEN, eos_token: str | None = EOS_TOKEN,
                 unk_token: str | None = EOS_TOKEN, pad_token: str | None = None, padding_side: str = "right",
                 truncation_side: str = "right", model_max_length: int | None = None,
                 return_token_type_ids: bool = False):
        self._tok = tokenizer
        self.source = source
        self.name_or_path = source
        eos = tokenizer.token_to_id(EOS_TOKEN)
        if eos is None:
            raise CheckpointError(f"tokenizer {source or ''} has no {EOS_TOKEN} token; "
                                  "it is not a CodeGen / GPT-2 tokenizer")
        self.eos_id: int = eos
        self.pad_id: int = eos  # CodeGen pads with <|endoftext|> (the engine's padding)
        self.vocab_size: int = tokenizer.get_vocab_size(with_added_tokens=True)
        self.add_prefix_space = bool(add_prefix_space)
        if self.add_prefix_space:  # as transformers does: the pre-tokenizer adds a space before the text
            tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=True, use_regex=True)
        self.bos_token, self.eos_token, self.unk_token = bos_token, eos_token, unk_token
        self._pad_token: str | None = None
        self.pad_token = pad_token
        self.padding_side = padding_side
        self.truncation_side = truncation_side
        self.model_max_length = int(model_max_length) if model_max_length is not None else VERY_LARGE
        self.return_token_type_ids = bool(return_token_type_ids)
        self.clean_up_tokenization_spaces = False

    # ------------------------------------------------------------------ loading and saving
    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path: str | os.PathLike, *, revision: str | None = None,
                        add_prefix_space: bool | None = None, **overrides) -> "CodeGenTokenizer":
        """The tokenizer of a checkpoint folder or Hub repo id (fetched once into the Hugging Face
        cache; `revision` a branch, tag or commit). `add_prefix_space` (default: the files' value,
        else False) and the overrides `bos_token`, `eos_token`, `unk_token`, `pad_token`,
        `padding_side` ("right" | "left"), `truncation_side`, `model_max_length`,
        `return_token_type_ids` replace what tokenizer_config.json says, as in transformers.

        Raises CheckpointError (missing or corrupt files, each one line naming the fix), TypeError
        for other keyword arguments.
        """
        folder = resolve_checkpoint(pretrained_model_name_or_path, revision).folder
        return load_tokenizer_folder(folder, add_prefix_space=add_prefix_space, **overrides)

    def save_pretrained(self, save_directory: str | os.PathLike) -> tuple[str, ...]:
        """Write tokenizer.json, vocab.json, merges.txt, tokenizer_config.json and
        special_tokens_map.json (transformers' AutoTokenizer / CodeGenTokenizer load them); returns
        the paths written."""
        folder = Path(save_directory)
        if folder.is_file():
            raise CheckpointError(f"{folder} is a file; save_pretrained needs a folder")
        folder.mkdir(parents=True, exist_ok=True)
        written = [folder / "tokenizer.json"]
        self._tok.save(str(written[0]))
        written += [Path(f) for f in self._tok.model.save(str(folder))]  # vocab.json, merges.txt
        special = {k: v for k, v in (("bos_token", self.bos_token), ("eos_token", self.eos_token),
                                     ("unk_token", self.unk_token), ("pad_token", self.pad_token)) if v is not None}
        config = {"tokenizer_class": "CodeGenTokenizer", "add_prefix_space": self.add_prefix_space,
                  "padding_side": self.padding_side, "truncation_side": self.truncation_side,
                  "clean_up_tokenization_spaces": False, "return_token_type_ids": self.return_token_type_ids,
                  **special}
        if self.model_max_length != VERY_LARGE:
            config["model_max_length"] = self.model_max_length
        for name, data in (("tokenizer_config.json", config), ("special_tokens_map.json", special)):
            (folder / name).write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
            written.append(folder / name)
        return tuple(str(p) for p in written)

    # ------------------------------------------------------------------ special tokens
    def _id(self, token: str | None) -> int | None:
        return None if token is None else self._tok.token_to_id(token)

    @property
    def pad_token(self) -> str | None:
        return self._pad_token

    @pad_token.setter
    def pad_token(self, token: str | None) -> None:
        if token is not None and self._tok.token_to_id(str(token)) is None:
            raise ValueError(f"pad_token {token!r} is not in the vocabulary; use an existing token such as "
                             f"{EOS_TOKEN!r} (tokenizer.pad_token = tokenizer.eos_token)")
        self._pad_token = None if token is None else str(token)

    @property
    def pad_token_id(self) -> int | None:
        return self._id(self._pad_token)

    @pad_token_id.setter
    def pad_token_id(self, token_id: int | None) -> None:
        self.pad_token = None if token_id is None else self._tok.id_to_token(int(token_id))

    @property
    def eos_token_id(self) -> int | None:
        return self._id(self.eos_token)

    @property
    def bos_token_id(self) -> int | None:
        return self._id(self.bos_token)

    @property
    def unk_token_id(self) -> int | None:
        return self._id(self.unk_token)

    @property
    def all_special_tokens(self) -> list[str]:
        seen = []
        for t in (self.bos_token, self.eos_token, self.unk_token, self.pad_token):
            if t is not None and t not in seen:
                seen.append(t)
        return seen

    @property
    def all_special_ids(self) -> list[int]:
        return [self._tok.token_to_id(t) for t in self.all_special_tokens]

    @property
    def padding_side(self) -> str:
        return self._padding_side

    @padding_side.setter
    def padding_side(self, side: str) -> None:
        if side not in ("right", "left"):
            raise ValueError(f"padding_side must be 'right' or 'left', got {side!r}")
        self._padding_side = side

    @property
    def truncation_side(self) -> str:
        return self._truncation_side

    @truncation_side.setter
    def truncation_side(self, side: str) -> None:
        if side not in ("right", "left"):
            raise ValueError(f"truncation_side must be 'right' or 'left', got {side!r}")
        self._truncation_side = side

    # ------------------------------------------------------------------ encoding
    def encode(self, text: str, add_special_tokens: bool = True, padding=False, truncation=None,
               max_length: int | None = None, return_tensors: str | None = None):
        """Token ids of one text: a list of ints (CodeGen adds no special tokens, so
        add_special_tokens changes nothing), or a (1, T) tensor with return_tensors="pt"."""
        if padding is False and truncation is None and max_length is None and return_tensors is None:
            return self._tok.encode(text, add_special_tokens=False).ids
        return self(text, padding=padding, truncation=truncation, max_length=max_length,
                    return_tensors=return_tensors, return_attention_mask=False)["input_ids"]

    def encode_batch(self, texts: Iterable[str]) -> list[list[int]]:
        return [e.ids for e in self._tok.encode_batch(list(texts), add_special_tokens=False)]

    def tokenize(self, text: str) -> list[str]:
        """The byte-level tokens of a text (e.g. ['def', 'Ġhello'])."""
        return self._tok.encode(text, add_special_tokens=False).tokens

    def __call__(self, text: str | Sequence[str], text_pair=None, add_special_tokens: bool = True,
                 padding: bool | str = False, truncation: bool | str | None = None, max_length: int | None = None,
                 pad_to_multiple_of: int | None = None, padding_side: str | None = None,
                 return_tensors: str | None = None, return_token_type_ids: bool | None = None,
                 return_attention_mask: bool | None = None, return_length: bool = False,
                 **unsupported) -> BatchEncoding:
        """Tokenize one text or a list of texts, as transformers' tokenizer call does.

        padding: False / "do_not_pad", True / "longest" (to the longest in the batch),
        "max_length" (to max_length, else model_max_length); needs a pad token. padding_side:
        "right" (default: the tokenizer's) or "left" (what batched generation wants).
        pad_to_multiple_of rounds the padded length up. truncation: True / "longest_first" /
        "only_first" cut each text to max_length (else model_max_length) on truncation_side; with
        truncation=None, a max_length alone also truncates (transformers' default).
        return_tensors: None (lists), "pt" (int64 tensors, (B, T); one text gives (1, T)) or "np".
        Returns a BatchEncoding with `input_ids`, `token_type_ids` (zeros, only when asked) and
        `attention_mask` (1 = token, 0 = padding; unless return_attention_mask=False), and `length`
        with return_length.

        Raises ValueError: padding without a pad token (the message says how to set one), tensors
        from rows of different lengths without padding, unknown padding/truncation values;
        TypeError for text pairs and other arguments this tokenizer does not implement.
        """
        if text_pair is not None:
            raise TypeError("CodeGenTokenizer here encodes single texts; text pairs are not supported")
        unsupported.pop("verbose", None)  # only transformers' warnings; this tokenizer has none to silence
        bad = sorted(k for k, v in unsupported.items() if k not in _CALL_DEFAULTS or v != _CALL_DEFAULTS[k])
        if bad:
            raise TypeError(f"CodeGenTokenizer.__call__ does not support "
                            f"{', '.join(f'{k}={unsupported[k]!r}' for k in bad)} (see docs/api.md)")
        single = isinstance(text, str)
        if not single and not (isinstance(text, (list, tuple)) and all(isinstance(t, str) for t in text)):
            raise ValueError("text must be a string or a list of strings")
        texts = [text] if single else list(text)
        if padding not in _PADDING:
            raise ValueError(f"padding must be True, False, 'longest', 'max_length' or 'do_not_pad', got {padding!r}")
        if truncation not in _TRUNCATION:
            raise ValueError(f"truncation must be True, False, 'longest_first', 'only_first' or 'do_not_truncate', "
                             f"got {truncation!r}")
        pad_mode, truncate = _PADDING[padding], bool(_TRUNCATION[truncation])
        if max_length is not None and padding is False and truncation is None:
            truncate = True  # transformers: a max_length alone activates truncation
        if max_length is None:
            limited = self.model_max_length < VERY_LARGE
            if pad_mode == "max_length":
                pad_mode = pad_mode if limited else None
            max_length = self.model_max_length if limited else None
            truncate = truncate and limited
        if pad_mode is not None and self.pad_token_id is None:
            raise ValueError(
                "Asking to pad but the tokenizer does not have a padding token. Please select a token to use as "
                "`pad_token` `(tokenizer.pad_token = tokenizer.eos_token e.g.)`")
        side = padding_side or self.padding_side
        if side not in ("right", "left"):
            raise ValueError(f"padding_side must be 'right' or 'left', got {side!r}")
        if return_tensors not in (None, "pt", "np"):
            raise ValueError(f"return_tensors must be None, 'pt' or 'np', got {return_tensors!r}")

        ids = self.encode_batch(texts)
        if truncate:
            limit = max_length
            if self.truncation_side == "right":
                ids = [row[:limit] for row in ids]
            else:
                ids = [row[len(row) - limit:] if len(row) > limit else row for row in ids]
        masks = [[1] * len(row) for row in ids]
        lengths = [len(row) for row in ids]
        if pad_mode is not None:
            target = max(lengths, default=0) if pad_mode == "longest" else max_length
            if pad_to_multiple_of:
                target = -(-target // pad_to_multiple_of) * pad_to_multiple_of
            if any(n < target for n in lengths):
                pad = self.pad_token_id
                fill = [target - n for n in lengths]
                if side == "right":
                    ids = [row + [pad] * f for row, f in zip(ids, fill)]
                    masks = [m + [0] * f for m, f in zip(masks, fill)]
                else:
                    ids = [[pad] * f + row for row, f in zip(ids, fill)]
                    masks = [[0] * f + m for m, f in zip(masks, fill)]
        out = {"input_ids": ids}
        if self.return_token_type_ids if return_token_type_ids is None else return_token_type_ids:
            out["token_type_ids"] = [[0] * len(row) for row in ids]
        if return_attention_mask is None or return_attention_mask:
            out["attention_mask"] = masks
        if return_length:
            out["length"] = [len(row) for row in ids]
        if return_tensors is not None:
            if len({len(row) for row in ids}) > 1:
                raise ValueError("Unable to create tensor: the texts have different lengths; pass padding=True "
                                 "(and a pad token) or truncation=True with max_length")
            import torch  # lazily: a tokenizer alone needs no torch

            out = {k: torch.tensor(v, dtype=torch.long) for k, v in out.items()}
            if return_tensors == "np":  # int64 arrays, through torch (numpy is not a dependency here)
                out = {k: v.numpy() for k, v in out.items()}
        elif single:
            out = {k: v[0] for k, v in out.items()}
        return BatchEncoding(out)

    # ------------------------------------------------------------------ decoding
    def decode(self, token_ids, skip_special_tokens: bool = False, clean_up_tokenization_spaces: bool | None = None,
               truncate_before_pattern: Sequence[str] | None = None) -> str | list[str]:
        """The text of one sequence of ids (an int, a list, a 1-D tensor or numpy array).

        skip_special_tokens drops `<|endoftext|>` (and the pad token). clean_up_tokenization_spaces
        is accepted and, as in transformers 5 for this BPE tokenizer, never applied (it would corrupt
        code). Ids outside the vocabulary (the model's padding rows) decode to nothing, as in
        transformers. truncate_before_pattern: see the module docstring. A batch (2-D) gives a list
        of strings, as in transformers 5. Raises ValueError for negative ids.
        """
        if hasattr(token_ids, "tolist"):
            token_ids = token_ids.tolist()
        if isinstance(token_ids, (list, tuple)) and token_ids and isinstance(token_ids[0], (list, tuple)):
            # a batch: transformers 5 decodes each row
            return self.batch_decode(token_ids, skip_special_tokens, clean_up_tokenization_spaces,
                                     truncate_before_pattern)
        ids = _as_id_list(token_ids)
        if ids and min(ids) < 0:
            raise ValueError(f"token id {min(ids)} is negative; token ids are in [0, {self.vocab_size})")
        if clean_up_tokenization_spaces and not getattr(self, "_warned_cleanup", False):
            log.warning("clean_up_tokenization_spaces=True is ignored for the CodeGen BPE tokenizer, as in "
                        "transformers 5 (it would strip spaces before punctuation in code)")
            self._warned_cleanup = True
        ids = [i for i in ids if i < self.vocab_size]
        if skip_special_tokens and self.pad_token_id is not None:
            ids = [i for i in ids if i != self.pad_token_id]
        text = self._tok.decode(ids, skip_special_tokens=skip_special_tokens)
        if truncate_before_pattern:
            text = truncate_before(text, truncate_before_pattern)
        return text

    def batch_decode(self, sequences, skip_special_tokens: bool = False,
                     clean_up_tokenization_spaces: bool | None = None,
                     truncate_before_pattern: Sequence[str] | None = None) -> list[str]:
        """`decode` of each row of a list of lists, a 2-D tensor or a 2-D numpy array."""
        if hasattr(sequences, "tolist"):
            sequences = sequences.tolist()
        return [self.decode(row, skip_special_tokens, clean_up_tokenization_spaces, truncate_before_pattern)
                for row in sequences]

    def decode_batch(self, batch: Iterable[Sequence[int]]) -> list[str]:
        return [self.decode(ids) for ids in batch]

    def convert_ids_to_tokens(self, ids, skip_special_tokens: bool = False):
        """Vocabulary entries (byte-level form, e.g. 'Ġworld') of an id or a list of ids; None for ids
        outside the vocabulary, as in transformers."""
        if isinstance(ids, int) or (hasattr(ids, "dim") and ids.dim() == 0):
            return self._tok.id_to_token(int(ids))
        special = set(self.all_special_ids) if skip_special_tokens else set()
        return [self._tok.id_to_token(int(i)) for i in _as_id_list(ids) if int(i) not in special]

    def convert_tokens_to_ids(self, tokens):
        """Ids of a token or a list of tokens; unknown tokens map to the unk id, as in transformers."""
        if isinstance(tokens, str):
            found = self._tok.token_to_id(tokens)
            return self.unk_token_id if found is None else found
        return [self.convert_tokens_to_ids(t) for t in tokens]

    def get_vocab(self) -> dict[str, int]:
        return self._tok.get_vocab(with_added_tokens=True)

    def token(self, token_id: int) -> str | None:
        """The vocabulary entry of one id (byte-level form, e.g. 'Ġworld'), None when unknown."""
        return self._tok.id_to_token(token_id)

    def __len__(self) -> int:
        return self.vocab_size

    def __repr__(self) -> str:
        return (f"CodeGenTokenizer({self.source!r}, vocab_size={self.vocab_size}, eos_id={self.eos_id}, "
                f"padding_side={self.padding_side!r}, pad_token={self.pad_token!r})")


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


_OPTIONS = ("add_prefix_space", "bos_token", "eos_token", "unk_token", "pad_token", "padding_side",
            "truncation_side", "model_max_length", "return_token_type_ids")


def _token_text(value):
    """A special token as tokenizer_config.json writes it: a string or an AddedToken dict."""
    return value.get("content") if isinstance(value, dict) else value


def _folder_options(folder: Path) -> dict:
    """The options tokenizer_config.json and special_tokens_map.json give (the config wins)."""
    options: dict = {}
    for name in ("special_tokens_map.json", "tokenizer_config.json"):
        path = folder / name
        if path.is_file():
            data = _read_json(path)
            options.update({k: (_token_text(v) if k.endswith("_token") else v)
                            for k, v in data.items() if k in _OPTIONS})
    return options


def load_tokenizer_folder(folder: str | os.PathLike, **overrides) -> CodeGenTokenizer:
    """From `tokenizer.json`, else from `vocab.json` + `merges.txt` (+ `added_tokens.json`), with
    the options of tokenizer_config.json / special_tokens_map.json; `overrides` (the keyword
    arguments of `CodeGenTokenizer.from_pretrained`; None = keep the files' value) win."""
    unknown = sorted(set(overrides) - set(_OPTIONS))
    if unknown:
        raise TypeError(f"CodeGenTokenizer.from_pretrained does not support {', '.join(unknown)}; "
                        f"supported: revision, {', '.join(_OPTIONS)}")
    folder = Path(folder)
    if not folder.is_dir():
        raise CheckpointError(f"tokenizer folder {folder} does not exist")
    options = {**_folder_options(folder), **{k: v for k, v in overrides.items() if v is not None}}
    if (folder / "tokenizer.json").is_file():
        path = folder / "tokenizer.json"
        try:
            tok = Tokenizer.from_file(str(path))
        except Exception as e:  # tokenizers raises a bare Exception on malformed files
            raise CheckpointError(f"{path}: not a valid tokenizer.json ({e}); "
                                  "delete it and download it again") from None
        return CodeGenTokenizer(tok, str(folder), **options)
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
    return CodeGenTokenizer(tok, str(folder), **options)


def load_tokenizer(name_or_path: str | os.PathLike, revision: str | None = None, **overrides) -> CodeGenTokenizer:
    """The tokenizer of a checkpoint folder or Hub repo id (see `hub.resolve_checkpoint`)."""
    return load_tokenizer_folder(resolve_checkpoint(name_or_path, revision).folder, **overrides)
