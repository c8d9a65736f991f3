"""`CodeGenTokenizer`'s documented API against transformers' CodeGenTokenizer on the same files
(the real CodeGen tokenizer in the shared data): one test per documented parameter.
docs/api.md lists them; docs/design.md §2 ("Tokenizer") describes the tokenizer."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from codegen_model import CodeGenTokenizer

transformers = pytest.importorskip("transformers")  # the test extra
pytestmark = pytest.mark.integration

TEXTS = ["def hello_world():", "  x = 1\n\tif x:\n        return   'a , b .'\n", "Hello world", "",
         "print(f'{a!r}')  # comment<|endoftext|>tail"]
BATCH = ["def f(x):\n    return x", "a", "import numpy as np\n\n\nclass A:\n\tpass"]


@pytest.fixture(scope="module")
def pair(tokenizer_dir):
    return (CodeGenTokenizer.from_pretrained(tokenizer_dir),
            transformers.AutoTokenizer.from_pretrained(str(tokenizer_dir)))


def same(a, b):
    """Equal BatchEncodings (lists, tensors or arrays), keys in the same order."""
    assert list(a.keys()) == list(b.keys())
    for k in a:
        x, y = a[k], b[k]
        if isinstance(y, torch.Tensor):
            assert isinstance(x, torch.Tensor) and x.dtype == y.dtype and torch.equal(x, y), k
        elif isinstance(y, np.ndarray):
            assert isinstance(x, np.ndarray) and x.dtype == y.dtype and np.array_equal(x, y), k
        else:
            assert x == y, k


def test_special_tokens_and_sizes(pair):
    ours, theirs = pair
    for name in ("bos_token", "eos_token", "unk_token", "pad_token", "bos_token_id", "eos_token_id",
                 "pad_token_id", "padding_side", "truncation_side", "model_max_length", "all_special_ids"):
        assert getattr(ours, name) == getattr(theirs, name), name
    assert len(ours) == len(theirs) == 50295


@pytest.mark.parametrize("text", TEXTS)
def test_call_single_text(pair, text):
    ours, theirs = pair
    same(ours(text), theirs(text))
    same(ours(text, return_tensors="pt"), theirs(text, return_tensors="pt"))
    assert ours.encode(text) == theirs.encode(text)


def test_call_batch_without_padding(pair):
    ours, theirs = pair
    same(ours(BATCH), theirs(BATCH))
    same(ours(BATCH, return_tensors=None), theirs(BATCH, return_tensors=None))


@pytest.mark.parametrize("side", ["right", "left"])
@pytest.mark.parametrize("padding", [True, "longest", "max_length"])
@pytest.mark.parametrize("return_tensors", [None, "pt", "np"])
def test_padding_and_padding_side(tokenizer_dir, side, padding, return_tensors):
    ours = CodeGenTokenizer.from_pretrained(tokenizer_dir, padding_side=side)
    theirs = transformers.AutoTokenizer.from_pretrained(str(tokenizer_dir), padding_side=side)
    ours.pad_token = ours.eos_token
    theirs.pad_token = theirs.eos_token
    kw = dict(padding=padding, return_tensors=return_tensors, max_length=24 if padding == "max_length" else None)
    same(ours(BATCH, **kw), theirs(BATCH, **kw))
    same(ours(BATCH, pad_to_multiple_of=8, padding=True), theirs(BATCH, pad_to_multiple_of=8, padding=True))


def test_padding_side_per_call(pair):
    ours, theirs = pair
    ours.pad_token = theirs.pad_token = "<|endoftext|>"
    try:
        same(ours(BATCH, padding=True, padding_side="left"), theirs(BATCH, padding=True, padding_side="left"))
    finally:
        ours.pad_token = theirs.pad_token = None


def test_padding_without_a_pad_token_is_the_same_error(pair):
    ours, theirs = pair
    assert ours.pad_token is None and theirs.pad_token is None
    with pytest.raises(ValueError, match="Asking to pad but the tokenizer does not have a padding token") as e:
        ours(BATCH, padding=True)
    with pytest.raises(ValueError, match="Asking to pad but the tokenizer does not have a padding token"):
        theirs(BATCH, padding=True)
    assert "\n" not in str(e.value)
    with pytest.raises(ValueError, match="different lengths"):
        ours(BATCH, return_tensors="pt")  # transformers: "Unable to create tensor ..."


@pytest.mark.parametrize("kw", [dict(truncation=True, max_length=3), dict(max_length=4),
                                dict(truncation="longest_first", max_length=2), dict(truncation=True),
                                dict(truncation=False, max_length=2)])
def test_truncation_and_max_length(pair, kw):
    ours, theirs = pair
    same(ours(BATCH, **kw), theirs(BATCH, **kw))
    same(ours(BATCH[0], **kw), theirs(BATCH[0], **kw))


def test_truncation_side_left(tokenizer_dir):
    ours = CodeGenTokenizer.from_pretrained(tokenizer_dir, truncation_side="left")
    theirs = transformers.AutoTokenizer.from_pretrained(str(tokenizer_dir), truncation_side="left")
    same(ours(BATCH, truncation=True, max_length=3), theirs(BATCH, truncation=True, max_length=3))


@pytest.mark.parametrize("kw", [dict(return_attention_mask=False), dict(return_token_type_ids=True),
                                dict(return_length=True), dict(return_token_type_ids=True, return_tensors="pt")])
def test_returned_fields(pair, kw):
    ours, theirs = pair
    same(ours(BATCH[:1] * 2, **kw), theirs(BATCH[:1] * 2, **kw))


def test_add_prefix_space(tokenizer_dir):
    ours = CodeGenTokenizer.from_pretrained(tokenizer_dir, add_prefix_space=True)
    theirs = transformers.AutoTokenizer.from_pretrained(str(tokenizer_dir), add_prefix_space=True)
    for text in TEXTS:
        assert ours(text)["input_ids"] == theirs(text)["input_ids"], text
        assert ours.decode(ours.encode(text)) == theirs.decode(theirs.encode(text))
    assert ours("Hello world")["input_ids"] == [18435, 995]  # the documented example


IDS = [4299, 23748, 62, 6894, 33529, 50256, 198, 50284, 7783, 50256, 50300, 220]


@pytest.mark.parametrize("skip", [False, True])
@pytest.mark.parametrize("cleanup", [None, False, True])
@pytest.mark.parametrize("kind", ["list", "tensor", "numpy", "int"])
def test_decode(pair, skip, cleanup, kind):
    ours, theirs = pair
    ids = {"list": IDS, "tensor": torch.tensor(IDS), "numpy": np.array(IDS), "int": 6894}[kind]
    kw = dict(skip_special_tokens=skip, clean_up_tokenization_spaces=cleanup)
    assert ours.decode(ids, **kw) == theirs.decode(ids, **kw)


def test_decode_truncate_before_pattern(pair):
    ours, theirs = pair
    code = "def f():\n    return 1\n# done\nprint(f())\n\n\n\nprint(2)\ndef g(): pass"
    ids = theirs.encode(code)
    for patterns in (["^#", "\n\n\n"], [r"^'''"], ["<\\|endoftext\\|>"], None, []):
        assert ours.decode(ids, truncate_before_pattern=patterns) == theirs.decode(ids, truncate_before_pattern=patterns)


@pytest.mark.parametrize("kind", ["list", "tensor", "numpy"])
def test_batch_decode(pair, kind):
    ours, theirs = pair
    rows = [IDS[:6], IDS[6:]]
    batch = {"list": rows, "tensor": torch.tensor(rows), "numpy": np.array(rows)}[kind]
    for skip in (False, True):
        assert ours.batch_decode(batch, skip_special_tokens=skip) == theirs.batch_decode(batch, skip_special_tokens=skip)
        assert ours.decode(batch, skip_special_tokens=skip) == theirs.decode(batch, skip_special_tokens=skip)  # a list


def test_convert_ids_to_tokens(pair):
    ours, theirs = pair
    assert ours.convert_ids_to_tokens(IDS) == theirs.convert_ids_to_tokens(IDS)
    assert ours.convert_ids_to_tokens(995) == theirs.convert_ids_to_tokens(995) == "Ġworld"
    assert ours.convert_ids_to_tokens(IDS, skip_special_tokens=True) == theirs.convert_ids_to_tokens(
        IDS, skip_special_tokens=True)
    tokens = theirs.convert_ids_to_tokens(IDS[:5])
    assert ours.convert_tokens_to_ids(tokens) == theirs.convert_tokens_to_ids(tokens)


def test_save_pretrained_is_loaded_by_transformers(tmp_path, tokenizer_dir):
    ours = CodeGenTokenizer.from_pretrained(tokenizer_dir, padding_side="left", pad_token="<|endoftext|>")
    ours.save_pretrained(tmp_path)
    theirs = transformers.AutoTokenizer.from_pretrained(str(tmp_path))
    assert type(theirs).__name__ == "CodeGenTokenizer"
    assert (theirs.padding_side, theirs.pad_token, theirs.eos_token_id) == ("left", "<|endoftext|>", 50256)
    same(ours(BATCH, padding=True), theirs(BATCH, padding=True))
    again = CodeGenTokenizer.from_pretrained(tmp_path)
    same(again(BATCH, padding=True), ours(BATCH, padding=True))


def test_unsupported_arguments_are_named(pair):
    ours, _ = pair
    with pytest.raises(TypeError, match="return_offsets_mapping=True"):
        ours("x", return_offsets_mapping=True)
    assert ours("x", verbose=False, stride=0)["input_ids"] == [87]  # at their defaults they change nothing
    with pytest.raises(TypeError, match="text pairs"):
        ours("x", "y")
    with pytest.raises(ValueError, match="padding_side must be 'right' or 'left', got 'top'"):
        ours.padding_side = "top"
