"""`CodeGenConfig`, `CodeGenModel`, `CodeGenForCausalLM` and `generate` called as the Transformers
documentation of CodeGen describes, against transformers on random-weight checkpoints in the Hub
layout: one test per documented parameter (docs/api.md lists them; docs/design.md §2)."""

from __future__ import annotations

import json
import shutil

import pytest
import torch

from codegen_model import CodeGenConfig, CodeGenForCausalLM, CodeGenModel, CodeGenTokenizer, DynamicCache
from codegen_model.config import ConfigError
from codegen_model.hub import CheckpointError
from tests.unit.test_weights import fake_hub_cache, hub_cache  # noqa: F401  (fixture)

transformers = pytest.importorskip("transformers")  # the test extra
pytestmark = pytest.mark.integration

# Small, but with the real tokenizer's vocabulary (and padding rows beyond it, as released).
SIZES = dict(vocab_size=50304, n_positions=128, n_ctx=128, n_embd=32, n_layer=2, n_head=4, rotary_dim=4)
LOGITS_ATOL, FINE_ATOL = 1e-4, 1e-5


def close(a, b, atol=LOGITS_ATOL):
    assert a.shape == b.shape, (a.shape, b.shape)
    diff = (a.float() - b.float()).abs().max().item()
    assert diff <= atol, diff


@pytest.fixture(scope="module")
def folder(tmp_path_factory, tokenizer_dir):
    """Our random model saved with save_pretrained, plus the tokenizer files: a Hub-layout folder."""
    path = tmp_path_factory.mktemp("api-ckpt")
    model = CodeGenForCausalLM(CodeGenConfig(**SIZES)).init_random(3)
    with torch.no_grad():  # non-trivial biases and norms, so a dropped tensor shows
        for name, p in model.named_parameters():
            if p.ndim == 1:
                p.add_(torch.randn(p.shape, generator=torch.Generator().manual_seed(len(name))) * 0.1)
    model.save_pretrained(path)
    for f in tokenizer_dir.iterdir():
        if f.is_file() and f.suffix in (".json", ".txt"):
            shutil.copy(f, path / f.name)
    return path


@pytest.fixture(scope="module")
def ours(folder):
    return CodeGenForCausalLM.from_pretrained(folder)


@pytest.fixture(scope="module")
def theirs(folder):
    return transformers.CodeGenForCausalLM.from_pretrained(str(folder), attn_implementation="eager").eval()


@pytest.fixture(scope="module")
def theirs_sdpa(folder):
    return transformers.CodeGenForCausalLM.from_pretrained(str(folder)).eval()


@pytest.fixture(scope="module")
def batch(folder):
    """A left-padded batch from the real tokenizer (and its attention mask)."""
    tok = CodeGenTokenizer.from_pretrained(folder, padding_side="left", pad_token="<|endoftext|>")
    enc = tok(["def hello_world():", "import os\nprint(os.getcwd())  # where", "x = 1"], padding=True,
              return_tensors="pt")
    return enc["input_ids"], enc["attention_mask"]


# -- CodeGenConfig ----------------------------------------------------------------------------

def test_config_defaults_are_the_documented_ones():
    ours, theirs = CodeGenConfig(), transformers.CodeGenConfig()
    for name, value in ours.to_dict().items():
        if name not in ("model_type", "architectures"):
            assert getattr(theirs, name) == value, name
    assert (ours.vocab_size, ours.n_embd, ours.n_layer, ours.rotary_dim, ours.inner_dim) == (50400, 4096, 28, 64, 16384)
    assert ours.hidden_size == 4096 and ours.num_hidden_layers == 28 and ours.max_position_embeddings == 2048


@pytest.mark.parametrize("activation", ["gelu_new", "gelu", "relu", "silu", "tanh"])
def test_config_activation_function(tmp_path, activation):
    cfg = CodeGenConfig(**SIZES, activation_function=activation)
    model = CodeGenForCausalLM(cfg).init_random(0)
    with torch.no_grad():
        model.transformer.h[0].mlp.fc_in.bias.normal_(0, 1.0)  # negative inputs: relu and gelu differ
    model.save_pretrained(tmp_path)
    ref = transformers.CodeGenForCausalLM.from_pretrained(str(tmp_path)).eval()
    ids = torch.randint(0, 50000, (2, 7), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        close(model.eval()(ids).logits, ref(ids).logits)


def test_config_dropout_applies_in_train_mode_only(ours):
    cfg = CodeGenConfig(**{**SIZES, "vocab_size": 512}, resid_pdrop=0.5, embd_pdrop=0.5, attn_pdrop=0.5)
    model = CodeGenForCausalLM(cfg).init_random(0)
    ids = torch.randint(0, 512, (1, 9))
    with torch.no_grad():
        a, b = model.eval()(ids).logits, model.eval()(ids).logits
        assert torch.equal(a, b)
        model.train()
        torch.manual_seed(0)
        c = model(ids).logits
        torch.manual_seed(1)
        d = model(ids).logits
    assert not torch.equal(c, d) and not torch.equal(a, c)


def test_config_save_pretrained_from_pretrained_to_dict(tmp_path):
    cfg = CodeGenConfig(n_layer=3, n_embd=48, n_head=4, rotary_dim=6, vocab_size=300, n_inner=100,
                        layer_norm_epsilon=1e-6, use_cache=False, bos_token_id=1)
    path = cfg.save_pretrained(tmp_path)
    assert path == tmp_path / "config.json"
    assert CodeGenConfig.from_pretrained(tmp_path) == cfg == CodeGenConfig.from_pretrained(path)
    data = json.loads(path.read_text())
    assert data == cfg.to_dict() and data["model_type"] == "codegen"
    ref = transformers.CodeGenConfig.from_pretrained(str(tmp_path))
    for name, value in cfg.to_dict().items():
        if name not in ("model_type", "architectures"):
            assert getattr(ref, name) == value, name
    assert CodeGenConfig.from_pretrained(tmp_path, n_layer=5).n_layer == 5  # overrides, as in transformers
    with pytest.raises(ConfigError, match="no field 'n_layers'"):
        CodeGenConfig.from_pretrained(tmp_path, n_layers=5)
    with pytest.raises(CheckpointError, match="does not exist"):
        CodeGenConfig.from_pretrained(tmp_path / "missing")


# -- from_pretrained / save_pretrained ----------------------------------------------------------

def test_from_pretrained_reads_a_transformers_checkpoint(tmp_path, theirs_sdpa, batch):
    theirs_sdpa.save_pretrained(tmp_path)  # transformers' own writing of the same weights
    model = CodeGenForCausalLM.from_pretrained(tmp_path)
    ids, mask = batch
    with torch.no_grad():
        close(model(ids, attention_mask=mask).logits, theirs_sdpa(ids, attention_mask=mask).logits)
    assert not model.training and model.dtype == torch.float32 and model.device.type == "cpu"
    loss = model(ids[:1, :5], labels=ids[:1, :5]).loss  # trainable, as transformers loads it
    loss.backward()
    assert model.lm_head.weight.grad is not None
    half = CodeGenForCausalLM.from_pretrained(tmp_path, dtype="bfloat16")
    assert half.dtype == torch.bfloat16
    assert CodeGenForCausalLM.from_pretrained(tmp_path, torch_dtype=torch.float16).dtype == torch.float16


def test_from_pretrained_hub_id_from_the_offline_cache(folder, hub_cache, ours):  # noqa: F811
    fake_hub_cache(hub_cache, "Salesforce/codegen-350M-mono",
                   {f.name: f for f in folder.iterdir() if f.is_file()})
    model = CodeGenForCausalLM.from_pretrained("Salesforce/codegen-350M-mono")
    ids = torch.tensor([[1, 2, 3]])
    with torch.no_grad():
        assert torch.equal(model(ids).logits, ours(ids).logits)
    tok = CodeGenTokenizer.from_pretrained("Salesforce/codegen-350M-mono")
    assert tok("def")["input_ids"] == [4299]
    assert CodeGenConfig.from_pretrained("Salesforce/codegen-350M-mono") == model.config
    with pytest.raises(CheckpointError) as e:
        CodeGenForCausalLM.from_pretrained("Salesforce/codegen-2B-mono")
    assert "\n" not in str(e.value) and "HF_HUB_OFFLINE" in str(e.value)


def test_from_pretrained_errors_are_one_line(tmp_path, folder):
    with pytest.raises(CheckpointError, match="does not exist") as e:
        CodeGenForCausalLM.from_pretrained(tmp_path / "nope")
    assert "\n" not in str(e.value)
    with pytest.raises(TypeError, match="device_map"):
        CodeGenForCausalLM.from_pretrained(folder, device_map="auto")


def test_save_pretrained_is_read_by_transformers_with_identical_logits(tmp_path, ours, batch):
    ours.save_pretrained(tmp_path / "lm", max_shard_size="100KB")
    assert (tmp_path / "lm" / "model.safetensors.index.json").is_file()
    ref = transformers.CodeGenForCausalLM.from_pretrained(str(tmp_path / "lm")).eval()
    ids, mask = batch
    with torch.no_grad():
        close(ours(ids, attention_mask=mask).logits, ref(ids, attention_mask=mask).logits, FINE_ATOL)


def test_bare_model_from_and_save_pretrained(tmp_path, folder, theirs_sdpa, batch):
    bare = CodeGenModel.from_pretrained(folder)  # from a full checkpoint: the head is skipped
    assert isinstance(bare, CodeGenModel) and not hasattr(bare, "lm_head")
    ids, mask = batch
    ref = theirs_sdpa.transformer
    with torch.no_grad():
        close(bare(ids, attention_mask=mask).last_hidden_state, ref(ids, attention_mask=mask).last_hidden_state)
    bare.save_pretrained(tmp_path)  # transformers' bare layout: no "transformer." prefix
    assert json.loads((tmp_path / "config.json").read_text())["architectures"] == ["CodeGenModel"]
    again = transformers.CodeGenModel.from_pretrained(str(tmp_path)).eval()
    ours_again = CodeGenModel.from_pretrained(tmp_path)
    with torch.no_grad():
        close(again(ids, attention_mask=mask).last_hidden_state, bare(ids, attention_mask=mask).last_hidden_state)
        assert torch.equal(ours_again(ids).last_hidden_state, bare(ids).last_hidden_state)


# -- forward, parameter by parameter ------------------------------------------------------------

def test_forward_input_ids_and_attention_mask(ours, theirs_sdpa, batch):
    ids, mask = batch
    with torch.no_grad():
        a, b = ours(ids, attention_mask=mask), theirs_sdpa(ids, attention_mask=mask)
        close(a.logits, b.logits)  # every position, padding included
        close(ours(ids).logits, theirs_sdpa(ids).logits)
    assert a.logits.dtype == torch.float32 and a.logits.shape == (*ids.shape, SIZES["vocab_size"])


def test_forward_position_ids(ours, theirs_sdpa, batch):
    ids, mask = batch
    pos = (mask.cumsum(-1) - 1).clamp(min=0)
    with torch.no_grad():
        close(ours(ids, attention_mask=mask, position_ids=pos).logits,
              theirs_sdpa(ids, attention_mask=mask, position_ids=pos).logits)


def test_forward_token_type_ids(ours, theirs_sdpa, batch):
    ids, mask = batch
    types = torch.randint(0, 5, ids.shape, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        close(ours(ids, token_type_ids=types).logits, theirs_sdpa(ids, token_type_ids=types).logits)


def test_forward_inputs_embeds(ours, theirs_sdpa, batch):
    ids, mask = batch
    emb = ours.get_input_embeddings()(ids) * 1.5
    with torch.no_grad():
        close(ours(inputs_embeds=emb, attention_mask=mask).logits,
              theirs_sdpa(inputs_embeds=emb, attention_mask=mask).logits)
    with pytest.raises(ValueError, match="exactly one of input_ids or inputs_embeds"):
        ours(ids, inputs_embeds=emb)


def test_forward_labels(ours, theirs_sdpa, batch):
    ids, mask = batch
    labels = ids.masked_fill(mask == 0, -100)
    with torch.no_grad():
        a = ours(ids, attention_mask=mask, labels=labels).loss
        b = theirs_sdpa(ids, attention_mask=mask, labels=labels).loss
    assert a.shape == () and abs(a.item() - b.item()) <= FINE_ATOL


def test_forward_use_cache_and_past_key_values_continuation(ours, theirs_sdpa, batch):
    ids, mask = batch
    cut = ids.shape[1] - 3
    with torch.no_grad():
        full = ours(ids, attention_mask=mask, use_cache=False)
        assert full.past_key_values is None
        first = ours(ids[:, :cut], attention_mask=mask[:, :cut])  # config.use_cache: a cache comes back
        cache = first.past_key_values
        assert isinstance(cache, DynamicCache) and cache.get_seq_length() == cut and len(cache) == SIZES["n_layer"]
        second = ours(ids[:, cut:], attention_mask=mask, past_key_values=cache)
        assert second.past_key_values is cache and cache.get_seq_length() == ids.shape[1]
        close(torch.cat([first.logits, second.logits], 1), full.logits)
        ref_first = theirs_sdpa(ids[:, :cut], attention_mask=mask[:, :cut], use_cache=True)
        ref = theirs_sdpa(ids[:, cut:], attention_mask=mask, cache=ref_first.cache)
        close(second.logits, ref.logits)
        k, v = cache[0]
        assert k.shape == (ids.shape[0], SIZES["n_head"], ids.shape[1], SIZES["n_embd"] // SIZES["n_head"])


def test_forward_output_attentions(ours, theirs, batch):
    ids, mask = batch
    with torch.no_grad():
        a = ours(ids, attention_mask=mask, output_attentions=True).attentions
        b = theirs(ids, attention_mask=mask, output_attentions=True).attentions
    assert len(a) == len(b) == SIZES["n_layer"]
    for x, y in zip(a, b):
        assert x.shape == (ids.shape[0], SIZES["n_head"], ids.shape[1], ids.shape[1])
        close(x, y, FINE_ATOL)


def test_forward_output_hidden_states(ours, theirs_sdpa, batch):
    ids, mask = batch
    with torch.no_grad():
        a = ours(ids, attention_mask=mask, output_hidden_states=True)
        b = theirs_sdpa(ids, attention_mask=mask, output_hidden_states=True)
    assert len(a.hidden_states) == len(b.hidden_states) == SIZES["n_layer"] + 1
    for x, y in zip(a.hidden_states, b.hidden_states):
        close(x, y)


def test_forward_return_dict_false(ours, theirs_sdpa, batch):
    ids, mask = batch
    with torch.no_grad():
        a = ours(ids, attention_mask=mask, labels=ids, output_hidden_states=True, return_dict=False)
        b = theirs_sdpa(ids, attention_mask=mask, labels=ids, output_hidden_states=True, return_dict=False)
        assert isinstance(a, tuple) and len(a) == len(b) == 4  # loss, logits, cache, hidden states
        close(a[0], b[0], FINE_ATOL)
        close(a[1], b[1])
        bare = ours.transformer(ids, use_cache=False, return_dict=False)
        assert isinstance(bare, tuple) and len(bare) == 1
    out = ours(ids[:, :2])
    assert out[0] is out["logits"] is out.logits and list(out.keys()) == ["logits", "past_key_values"]


@pytest.mark.parametrize("keep", [1, 3, torch.tensor([0, 2, 5]), torch.tensor([4])])
def test_forward_logits_to_keep(ours, theirs_sdpa, batch, keep):
    ids, mask = batch
    with torch.no_grad():
        a = ours(ids, attention_mask=mask, logits_to_keep=keep).logits
        b = theirs_sdpa(ids, attention_mask=mask, logits_to_keep=keep).logits
    close(a, b)


# -- generate -----------------------------------------------------------------------------------

def test_generate_defaults_one_prompt_token_for_token(folder, ours, theirs_sdpa):
    tok = CodeGenTokenizer.from_pretrained(folder)
    enc = tok("def hello_world():", return_tensors="pt")
    mine = ours.generate(**enc)
    ref = theirs_sdpa.generate(**enc)
    assert mine.dtype == torch.long and mine.shape == ref.shape == (1, enc["input_ids"].shape[1] + 20)
    assert mine.tolist() == ref.tolist()
    assert tok.decode(mine[0]) == transformers.AutoTokenizer.from_pretrained(str(folder)).decode(ref[0])


def test_generate_left_padded_batch_token_for_token(ours, theirs_sdpa, batch):
    ids, mask = batch
    mine = ours.generate(ids, attention_mask=mask, max_new_tokens=12)
    ref = theirs_sdpa.generate(ids, attention_mask=mask, max_new_tokens=12)
    assert mine.tolist() == ref.tolist()
    for b in range(ids.shape[0]):  # each row as if alone
        row = ids[b][mask[b].bool()][None]
        assert mine[b, -12:].tolist() == ours.generate(row, max_new_tokens=12)[0, -12:].tolist()


def test_generate_max_length_and_min_new_tokens(ours, theirs_sdpa, batch):
    ids, mask = batch
    for kw in (dict(max_length=ids.shape[1] + 5), dict(max_new_tokens=4, min_new_tokens=4)):
        assert ours.generate(ids, attention_mask=mask, **kw).tolist() == \
            theirs_sdpa.generate(ids, attention_mask=mask, **kw).tolist()


def test_generate_eos_and_pad_token_id(ours, theirs_sdpa, batch):
    ids, mask = batch
    free = ours.generate(ids, attention_mask=mask, max_new_tokens=10)
    eos = int(free[0, ids.shape[1] + 2])  # row 0 produces it as its third new token
    kw = dict(attention_mask=mask, max_new_tokens=10, eos_token_id=eos, pad_token_id=7)
    mine = ours.generate(ids, **kw)
    assert mine.tolist() == theirs_sdpa.generate(ids, **kw).tolist()
    after = mine[0, ids.shape[1] + 3:]
    assert after.numel() == 0 or (after == 7).all()  # finished rows are padded with pad_token_id
    kw["eos_token_id"] = [eos, 12345]
    assert ours.generate(ids, **kw).tolist() == theirs_sdpa.generate(ids, **kw).tolist()


def test_generate_without_cache_is_the_same(ours, batch):
    ids, mask = batch
    assert torch.equal(ours.generate(ids, attention_mask=mask, max_new_tokens=5, use_cache=False),
                       ours.generate(ids, attention_mask=mask, max_new_tokens=5))


def test_generate_sampling_is_seeded_and_shaped(ours, batch):
    ids, mask = batch
    kw = dict(attention_mask=mask, max_new_tokens=8, do_sample=True, num_return_sequences=3)
    a = ours.generate(ids, seed=1, **kw)
    assert a.shape == (ids.shape[0] * 3, ids.shape[1] + 8)
    assert torch.equal(a, ours.generate(ids, seed=1, **kw))
    assert not torch.equal(a, ours.generate(ids, seed=2, **kw))
    torch.manual_seed(0)
    b = ours.generate(ids, **kw)
    torch.manual_seed(0)
    assert torch.equal(b, ours.generate(ids, **kw))  # the global seed makes it reproducible, as in transformers
    assert torch.equal(a[::3, : ids.shape[1]], ids)  # each prompt repeated num_return_sequences times


@pytest.mark.parametrize("kw", [dict(top_k=1), dict(top_k=0, top_p=1e-6), dict(temperature=1e-4, top_k=0)])
def test_generate_sampling_limits_equal_greedy(ours, batch, kw):
    ids, mask = batch
    greedy = ours.generate(ids, attention_mask=mask, max_new_tokens=6)
    assert torch.equal(ours.generate(ids, attention_mask=mask, max_new_tokens=6, do_sample=True, seed=3, **kw),
                       greedy)


def test_generate_top_k_keeps_draws_in_the_top_k(ours):
    ids = torch.tensor([[4299, 23748]])
    out = ours.generate(ids, max_new_tokens=1, do_sample=True, top_k=5, num_return_sequences=64, seed=0)
    with torch.no_grad():
        top = set(ours(ids).logits[0, -1].topk(5).indices.tolist())
    drawn = set(out[:, -1].tolist())
    assert drawn <= top and len(drawn) > 1


@pytest.mark.parametrize("kw,error,match", [
    (dict(num_beams=2), TypeError, "num_beams=2"),
    (dict(repetition_penalty=1.2), TypeError, "repetition_penalty"),
    (dict(foo=1), TypeError, "foo=1"),
    (dict(do_sample=True, temperature=0.0), ValueError, "temperature must be a strictly positive"),
    (dict(do_sample=True, top_p=0.0), ValueError, r"top_p must be in \(0, 1\]"),
    (dict(num_return_sequences=2), ValueError, "needs do_sample=True"),
    (dict(max_new_tokens=500), ValueError, "exceed the model's context of 128"),
])
def test_generate_unsupported_or_invalid_arguments(ours, kw, error, match):
    with pytest.raises(error, match=match) as e:
        ours.generate(torch.tensor([[1, 2]]), **kw)
    assert "\n" not in str(e.value)


def test_generate_accepts_the_documented_defaults_explicitly(ours):
    ids = torch.tensor([[1, 2]])
    assert torch.equal(ours.generate(ids, num_beams=1, repetition_penalty=1.0, output_scores=False),
                       ours.generate(ids))


@pytest.mark.parametrize("sizes", [dict(n_embd=64, n_head=2, rotary_dim=32), dict(n_embd=64, n_head=8, rotary_dim=2, n_inner=50),
                                   dict(n_embd=48, n_head=6, rotary_dim=8, activation_function="relu"),
                                   dict(n_embd=32, n_head=4, rotary_dim=8, n_layer=3, layer_norm_epsilon=1e-3)])
def test_other_configurations(tmp_path, sizes):
    """Heads not divisible by 4, narrow or whole-head rotary, a set n_inner, another activation."""
    model = CodeGenForCausalLM(CodeGenConfig(**{"vocab_size": 300, "n_positions": 64, "n_ctx": 64, "n_layer": 2,
                                                **sizes})).init_random(2).eval()
    with torch.no_grad():
        for name, p in model.named_parameters():
            if p.ndim == 1:
                p.add_(torch.randn(p.shape, generator=torch.Generator().manual_seed(len(name))) * 0.1)
    model.save_pretrained(tmp_path)
    sdpa = transformers.CodeGenForCausalLM.from_pretrained(str(tmp_path)).eval()
    eager = transformers.CodeGenForCausalLM.from_pretrained(str(tmp_path), attn_implementation="eager").eval()
    ids = torch.randint(0, 300, (3, 9), generator=torch.Generator().manual_seed(0))
    mask = torch.ones_like(ids)
    mask[0, :4] = mask[2, :1] = 0
    with torch.no_grad():
        a, b = model(ids, attention_mask=mask, labels=ids), sdpa(ids, attention_mask=mask, labels=ids)
        close(a.logits, b.logits)
        assert abs(a.loss.item() - b.loss.item()) <= FINE_ATOL
        for x, y in zip(model(ids, attention_mask=mask, output_attentions=True).attentions,
                        eager(ids, attention_mask=mask, output_attentions=True).attentions):
            close(x, y, FINE_ATOL)
    assert model.generate(ids, attention_mask=mask, max_new_tokens=15).tolist() == \
        sdpa.generate(ids, attention_mask=mask, max_new_tokens=15).tolist()


def test_config_accepts_transformers_generic_keys(tmp_path):
    """A config built for transformers builds here; its forward defaults and pad id are honoured."""
    hf = transformers.CodeGenConfig(**SIZES, pad_token_id=0, output_hidden_states=True, return_dict=False)
    cfg = CodeGenConfig(**hf.to_dict())
    assert cfg == CodeGenConfig(**SIZES) and cfg.pad_token_id == 0 and cfg.to_dict()["pad_token_id"] == 0
    model = CodeGenForCausalLM(cfg).init_random(0).eval()
    out = model(torch.tensor([[1, 2, 3]]))
    assert isinstance(out, tuple) and len(out[-1]) == SIZES["n_layer"] + 1  # logits, cache, hidden states
    cfg.save_pretrained(tmp_path)
    assert CodeGenConfig.from_pretrained(tmp_path).pad_token_id == 0
    with pytest.raises(ConfigError, match="no field 'n_layers'"):
        CodeGenConfig(n_layers=2)
