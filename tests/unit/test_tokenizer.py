"""The CodeGen tokenizer on the real files in ../shared/data/codegen-tokenizer/ (docs/design.md §2)."""

from __future__ import annotations

import json
import os
import shutil
import sysconfig
from pathlib import Path

import pytest
import torch

from codegen_model.hub import CheckpointError
from codegen_model.tiny import tiny_tokenizer
from codegen_model.tokenizer import load_tokenizer, truncate_before

BPE_FILES = ("vocab.json", "merges.txt", "added_tokens.json")
TRICKY = [
    "", " ", "\n", "def f(x):\n\treturn x  \n", " " * 40 + "x", "\t" * 12 + "y", "a , b .",
    "x = 'héllo wörld' # ünïcode ✓ 漢字 🙂\r\n", "<|endoftext|>def g(): pass<|endoftext|>",
    "  \t \t  mixed\t\t  whitespace   \n\n\n", "'''doc'''\n\"\"\"doc\"\"\"",
]


def stdlib_corpus(n: int = 40, max_bytes: int = 30_000) -> list[str]:
    """~40 real Python files of the standard library (deterministic choice, ~0.5 MB)."""
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    files = sorted(p for p in stdlib.glob("*.py") if p.stat().st_size < max_bytes)
    picked = files[:: max(1, len(files) // n)][:n]
    return [p.read_text(encoding="utf-8") for p in picked]


@pytest.fixture(scope="module")
def tok(tokenizer_dir):
    return load_tokenizer(tokenizer_dir)


@pytest.fixture(scope="module")
def bpe_dir(tokenizer_dir, tmp_path_factory):
    """The same tokenizer without tokenizer.json: vocab.json + merges.txt + added_tokens.json."""
    folder = tmp_path_factory.mktemp("bpe-files")
    for name in BPE_FILES:
        shutil.copy(tokenizer_dir / name, folder / name)
    return folder


@pytest.fixture(scope="module")
def corpus():
    texts = stdlib_corpus()
    assert len(texts) >= 30, "the standard library corpus is unexpectedly small"
    return texts


def test_known_ids(tok):
    assert tok.encode("Hello world") == [15496, 995]
    assert tok.encode(" Hello world") == [18435, 995]
    assert tok.encode("    return x")[0] == 50284
    assert tok.eos_id == tok.pad_id == 50256
    assert tok.vocab_size == 50295  # 50257 BPE + 38 whitespace runs; the model's 51200 rows pad
    assert tok.encode("<|endoftext|>") == [50256]


def test_whitespace_tokens(tok):
    for n in range(2, 32):
        assert tok.encode(" " * n) == [50257 + 31 - n], n
    for n in range(2, 10):
        assert tok.encode("\t" * n) == [50287 + 9 - n], n


def test_roundtrip_on_real_python(tok, corpus):
    for text in corpus + TRICKY:
        assert tok.decode(tok.encode(text)) == text


def test_decode_is_exact_no_space_cleanup(tok):
    text = "f(a , b) . x ! y ? 'll n't"
    assert tok.decode(tok.encode(text)) == text
    assert tok.decode(torch.tensor(tok.encode(text))) == text  # tensors accepted


def test_same_ids_as_transformers(tokenizer_dir, bpe_dir, tok, corpus):
    from transformers import AutoTokenizer

    ours_from_bpe = load_tokenizer(bpe_dir)
    hf = AutoTokenizer.from_pretrained(tokenizer_dir)
    texts = corpus + TRICKY
    ours = tok.encode_batch(texts)
    assert ours == [hf(t, add_special_tokens=False)["input_ids"] for t in texts]
    assert ours_from_bpe.encode_batch(texts) == ours
    assert ours_from_bpe.vocab_size == tok.vocab_size and ours_from_bpe.eos_id == 50256


def test_encode_batch_equals_encode(tok):
    assert tok.encode_batch(TRICKY) == [tok.encode(t) for t in TRICKY]


def test_decode_drops_padding_rows_and_rejects_negative_ids(tok):
    assert tok.decode([15496, 50300, 995]) == "Hello world"  # as transformers: the model's padding rows decode to nothing
    with pytest.raises(ValueError, match=r"token id -1 is negative"):
        tok.decode([15496, -1])


CUTS = [
    ("x = 1\nprint(x)\ny = 2\nprint(y)\nz", ["^#"], "x = 1\nprint(x)\ny = 2\n"),
    ("def a():\n    pass\ndef b():\n    pass", [], "def a():\n    pass\n"),
    ("a = 1\n# comment\nb = 2\n'''doc", ["^#", "^'''"], "a = 1\n"),
    ("a = 1\n\n\n\nb", ["^#", "\n\n\n"], "a = 1"),
    ("x  # not at line start\ny", ["^#"], "x  # not at line start\ny"),
    ("a<|endoftext|>b", [r"<\|endoftext\|>"], "a"),
    ("print(1)\nprint(2)\n#c", ["^#"], "print(1)\n"),
]


@pytest.mark.parametrize("text,patterns,expected", CUTS)
def test_truncate_before_pattern(tok, text, patterns, expected):
    assert truncate_before(text, patterns) == expected
    if patterns:
        assert tok.decode(tok.encode(text), truncate_before_pattern=patterns) == expected


def test_truncate_matches_the_seed_tokenizer(tokenizer_dir):
    """Same cuts as transformers' CodeGenTokenizer.truncate (the seed's rule) on varied text."""
    from transformers.models.codegen.tokenization_codegen import CodeGenTokenizer as HFTok

    patterns = ["^#", r"<\|endoftext\|>", "^'''", '^"""', "\n\n\n"]
    texts = [t for t, _, _ in CUTS] + TRICKY + [
        "def f():\n    return 1\n\nprint(f())\nprint(2)\ndef g(): pass\n# x",
        "import os\n'''\nmore\n'''\ndef h():\n  pass\n\n\n\ndef k(): pass",
    ]
    for text in texts:
        assert truncate_before(text, patterns) == HFTok.truncate(None, text, patterns), text


def test_tiny_tokenizer_is_byte_level():
    tok = tiny_tokenizer()
    assert tok.vocab_size == 257 and tok.eos_id == tok.pad_id == 256
    text = "héllo\tworld  🙂<|endoftext|>\n"
    ids = tok.encode(text)
    assert ids[:2] == [104, 0xC3] and 256 in ids and max(ids) <= 256
    assert tok.decode(ids) == text
    assert tok.encode("abc") == [97, 98, 99]


# -- bad input: one clear line --------------------------------------------------------------

def test_missing_folder(tmp_path):
    with pytest.raises(CheckpointError, match="does not exist"):
        load_tokenizer(tmp_path / "nope")


def test_folder_without_tokenizer_files(tmp_path):
    (tmp_path / "vocab.json").write_text("{}")
    with pytest.raises(CheckpointError, match=r"no tokenizer.json and no merges.txt"):
        load_tokenizer(tmp_path)


def test_corrupt_tokenizer_json(tmp_path, tokenizer_dir):
    (tmp_path / "tokenizer.json").write_bytes((tokenizer_dir / "tokenizer.json").read_bytes()[:5000])
    with pytest.raises(CheckpointError, match=r"tokenizer.json: not a valid tokenizer.json .*download it again"):
        load_tokenizer(tmp_path)


def test_corrupt_vocab_json(bpe_dir, tmp_path):
    for name in BPE_FILES:
        shutil.copy(bpe_dir / name, tmp_path / name)
    (tmp_path / "vocab.json").write_text('{"a": 0, "b":')
    with pytest.raises(CheckpointError, match=r"vocab.json: cannot read .*corrupt"):
        load_tokenizer(tmp_path)


def test_added_tokens_with_a_gap(bpe_dir, tmp_path):
    for name in BPE_FILES:
        shutil.copy(bpe_dir / name, tmp_path / name)
    (tmp_path / "added_tokens.json").write_text(json.dumps({"  ": 50258}))
    with pytest.raises(CheckpointError, match=r"added token '  ' should have id 50258 but lands at 50257"):
        load_tokenizer(tmp_path)


def test_tokenizer_from_hub_cache(tokenizer_dir, tmp_path, monkeypatch):
    """A repo id resolves to its snapshot in the HF cache, offline."""
    from huggingface_hub import constants

    commit = "0123456789abcdef0123456789abcdef01234567"
    repo = tmp_path / "models--Salesforce--codegen-350M-mono"
    snap = repo / "snapshots" / commit
    snap.mkdir(parents=True)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(commit)
    (snap / "config.json").write_text("{}")
    os.symlink(tokenizer_dir / "tokenizer.json", snap / "tokenizer.json")
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    tok = load_tokenizer("Salesforce/codegen-350M-mono")
    assert tok.encode("Hello world") == [15496, 995]
