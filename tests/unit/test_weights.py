"""Checkpoint loading: formats, dtype casts, the Hub cache, identity hashes, and every bad input.

Checkpoints here are written by our own `save_model` / `torch.save` on the tiny config; the same
loader against transformers' `save_pretrained` files is tests/integration/test_parity.py.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil

import pytest
import torch

from codegen_model import hub
from codegen_model.config import CodeGenConfig, ConfigError
from codegen_model.hub import CheckpointError, download_patterns, resolve_checkpoint
from codegen_model.model import CodeGenForCausalLM, sinusoidal_table
from codegen_model.registry import load_model
from codegen_model.weights import (
    DeviceError,
    check_device,
    resolve_dtype,
    save_model,
    weight_files,
    weights_hash,
)

CFG = dict(vocab_size=96, n_positions=64, n_ctx=64, n_embd=32, n_layer=2, n_head=4, rotary_dim=4)
COMMIT = "89abcdef0123456789abcdef0123456789abcdef"


def random_model(seed: int = 0, **overrides) -> CodeGenForCausalLM:
    model = CodeGenForCausalLM(CodeGenConfig(**{**CFG, **overrides})).init_random(seed)
    with torch.no_grad():  # non-trivial biases and norms, so a swapped or dropped one shows
        g = torch.Generator().manual_seed(seed + 1)
        for _name, p in model.named_parameters():
            if p.ndim == 1:
                p.add_(torch.randn(p.shape, generator=g) * 0.1)
    return model.eval()


def save_legacy_bin(model: CodeGenForCausalLM, folder, dtype=torch.float16, legacy=True):
    """The released checkpoints' layout: an fp16 pytorch_model.bin with per-layer legacy buffers."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.json").write_text(json.dumps(model.config.to_dict()))
    sd = {k: v.to(dtype) for k, v in model.state_dict().items()}
    if legacy:
        n = model.config.n_positions
        for i in range(model.config.n_layer):
            sd[f"transformer.h.{i}.attn.causal_mask"] = torch.tril(torch.ones(n, n, dtype=torch.bool))[None, None]
            sd[f"transformer.h.{i}.attn.masked_bias"] = torch.tensor(-1e9)
    torch.save(sd, folder / "pytorch_model.bin")
    return folder


def rewrite_bin(folder, edit):
    sd = torch.load(folder / "pytorch_model.bin", weights_only=True)
    edit(sd)
    torch.save(sd, folder / "pytorch_model.bin")


def logits(model, ids):
    with torch.no_grad():
        return model(ids).logits


@pytest.fixture(scope="module")
def model():
    return random_model()


@pytest.fixture(scope="module")
def ids():
    return torch.randint(0, CFG["vocab_size"], (2, 9), generator=torch.Generator().manual_seed(3))


@pytest.fixture
def st_dir(model, tmp_path):
    return save_model(model, tmp_path / "st")


@pytest.fixture
def bin_dir(model, tmp_path):
    return save_legacy_bin(model, tmp_path / "bin")


# -- formats -------------------------------------------------------------------------------

def test_safetensors_roundtrip(model, st_dir, ids):
    loaded = load_model(st_dir)
    assert loaded.config == model.config
    for (k, a), (k2, b) in zip(model.state_dict().items(), loaded.state_dict().items()):
        assert k == k2 and torch.equal(a, b), k
    assert torch.equal(logits(loaded, ids), logits(model, ids))
    assert not loaded.training and not any(p.requires_grad for p in loaded.parameters())
    rd = model.config.rotary_dim
    assert torch.equal(loaded.transformer.rotary_table, sinusoidal_table(model.config.n_positions, rd))


def test_sharded_safetensors_with_index(model, tmp_path, ids):
    folder = save_model(model, tmp_path / "sharded", max_shard_bytes=20_000)
    assert len(weight_files(folder)) > 3 and (folder / "model.safetensors.index.json").is_file()
    assert torch.equal(logits(load_model(folder), ids), logits(model, ids))


def test_legacy_fp16_bin_loads_in_fp32(model, bin_dir, ids):
    loaded = load_model(bin_dir, dtype=torch.float32)
    assert loaded.dtype == torch.float32
    for k, v in model.state_dict().items():
        assert torch.equal(loaded.state_dict()[k], v.half().float()), k
    rounded = CodeGenForCausalLM(model.config)
    rounded.load_state_dict({k: v.half().float() for k, v in model.state_dict().items()})
    assert torch.equal(logits(loaded, ids), logits(rounded.eval(), ids))


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, "bf16", "float16"])
def test_load_in_half_precision(bin_dir, st_dir, dtype, ids):
    want = resolve_dtype(dtype)
    for folder in (bin_dir, st_dir):
        loaded = load_model(folder, dtype=dtype)
        assert all(p.dtype == want for p in loaded.parameters())
        out = loaded(ids).logits
        assert out.dtype == torch.float32 and torch.isfinite(out).all()


def test_sharded_bin_with_index(model, tmp_path, ids):
    folder = tmp_path / "bin-sharded"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps(model.config.to_dict()))
    items = list(model.state_dict().items())
    halves = {"pytorch_model-00001-of-00002.bin": dict(items[:7]), "pytorch_model-00002-of-00002.bin": dict(items[7:])}
    for name, sd in halves.items():
        torch.save(sd, folder / name)
    index = {"weight_map": {k: name for name, sd in halves.items() for k in sd}}
    (folder / "pytorch_model.bin.index.json").write_text(json.dumps(index))
    assert torch.equal(logits(load_model(folder), ids), logits(model, ids))


def test_safetensors_preferred_over_bin(model, st_dir, ids):
    save_legacy_bin(random_model(seed=9), st_dir)  # a different model's .bin beside it
    assert torch.equal(logits(load_model(st_dir), ids), logits(model, ids))


@pytest.mark.parametrize("fmt", ["safetensors", "fp32-bin"])
def test_loaded_weights_do_not_share_memory_with_the_file(model, tmp_path, fmt):
    if fmt == "safetensors":
        folder = save_model(model, tmp_path / "st")
        path = folder / "model.safetensors"
    else:  # same dtype as requested: the cast is a no-op, the loader must still copy out of the mmap
        folder = save_legacy_bin(model, tmp_path / "bin32", dtype=torch.float32)
        path = folder / "pytorch_model.bin"
    a = load_model(folder)
    a.transformer.wte.weight.add_(1.0)  # writes stay private
    assert torch.equal(load_model(folder).transformer.wte.weight, model.transformer.wte.weight)
    before = {k: v.clone() for k, v in a.state_dict().items()}
    with open(path, "r+b") as f:  # the file rewritten in place while the model is alive
        f.truncate(64)
    assert all(torch.equal(v, before[k]) for k, v in a.state_dict().items())


# -- the Hub cache -------------------------------------------------------------------------

def fake_hub_cache(cache, repo_id, files: dict, commit=COMMIT, blobs=True):
    """The HF cache layout: refs/main -> commit, snapshots/<commit>/<file> -> ../../blobs/<hash>."""
    repo = cache / ("models--" + repo_id.replace("/", "--"))
    snap = repo / "snapshots" / commit
    snap.mkdir(parents=True)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(commit)
    (repo / "blobs").mkdir()
    for name, src in files.items():
        if blobs:
            digest = hashlib.sha256(src.read_bytes()).hexdigest()
            shutil.copy(src, repo / "blobs" / digest)
            os.symlink(os.path.join("..", "..", "blobs", digest), snap / name)
        else:
            shutil.copy(src, snap / name)
    return snap


@pytest.fixture
def hub_cache(tmp_path, monkeypatch):
    from huggingface_hub import constants

    cache = tmp_path / "hf-cache"
    cache.mkdir()
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(cache))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    return cache


def test_repo_id_from_hub_cache_offline(model, st_dir, hub_cache, ids):
    fake_hub_cache(hub_cache, "Salesforce/codegen-350M-mono",
                   {"config.json": st_dir / "config.json", "model.safetensors": st_dir / "model.safetensors"})
    ckpt = resolve_checkpoint("Salesforce/codegen-350M-mono")
    assert ckpt.repo_id == "Salesforce/codegen-350M-mono" and ckpt.commit == COMMIT
    assert resolve_checkpoint("Salesforce/codegen-350M-mono", revision=COMMIT).folder == ckpt.folder
    assert torch.equal(logits(load_model("Salesforce/codegen-350M-mono"), ids), logits(model, ids))
    # the hash of the cached snapshot (read from blob names) equals that of a plain copy
    assert weights_hash(ckpt.folder) == weights_hash(st_dir)


def test_download_patterns_pick_one_format():
    both = ["config.json", "pytorch_model.bin", "model.safetensors", "README.md", "tokenizer.json"]
    pats = download_patterns(both)
    assert "model.safetensors" in pats and "pytorch_model.bin" not in pats
    assert "config.json" in pats and "vocab.json" in pats and "README.md" not in pats
    sharded_bin = ["config.json", "pytorch_model.bin.index.json", "pytorch_model-00001-of-00002.bin"]
    pats = download_patterns(sharded_bin)
    assert "pytorch_model.bin.index.json" in pats and "pytorch_model-*-of-*.bin" in pats
    assert not any("safetensors" in p for p in pats)


def test_weights_hash_tracks_content(model, st_dir, tmp_path):
    h = weights_hash(st_dir)
    assert h.startswith("sha256:") and weights_hash(st_dir) == h
    other = save_model(random_model(seed=5), tmp_path / "other")
    assert weights_hash(other) != h
    cfg = json.loads((st_dir / "config.json").read_text())
    cfg["layer_norm_epsilon"] = 1e-6
    (st_dir / "config.json").write_text(json.dumps(cfg))
    assert weights_hash(st_dir) != h  # the config is part of the model's identity


# -- bad input: one clear line each (docs/design.md §2) ----------------------------------------

def one_line(excinfo) -> str:
    msg = str(excinfo.value)
    assert "\n" not in msg and excinfo.value.__cause__ is None, msg
    return msg


def test_missing_folder(tmp_path):
    with pytest.raises(CheckpointError, match=r"checkpoint folder .*nope does not exist") as e:
        load_model(tmp_path / "nope")
    one_line(e)
    with pytest.raises(CheckpointError, match="does not exist"):
        load_model("./no/such/folder")


def test_path_is_a_file(st_dir):
    with pytest.raises(CheckpointError, match=r"is a file; pass the checkpoint folder"):
        load_model(st_dir / "model.safetensors")


def test_missing_config(st_dir):
    (st_dir / "config.json").unlink()
    with pytest.raises(CheckpointError, match=r"config.json: missing"):
        load_model(st_dir)


def test_missing_weights(st_dir):
    (st_dir / "model.safetensors").unlink()
    with pytest.raises(CheckpointError, match=r"no weights \(model.safetensors, pytorch_model.bin.*holds \['config.json'\]"):
        load_model(st_dir)


def test_missing_shard(model, tmp_path):
    folder = save_model(model, tmp_path / "sh", max_shard_bytes=20_000)
    victim = sorted(folder.glob("model-*.safetensors"))[1]
    victim.unlink()
    with pytest.raises(CheckpointError, match=rf"{victim.name}: missing weights shard"):
        load_model(folder)


@pytest.mark.parametrize("fmt", ["safetensors", "bin"])
@pytest.mark.parametrize("damage", ["truncated", "garbage", "empty"])
def test_corrupt_weights_file(st_dir, bin_dir, fmt, damage):
    path = st_dir / "model.safetensors" if fmt == "safetensors" else bin_dir / "pytorch_model.bin"
    data = path.read_bytes()
    path.write_bytes({"truncated": data[: len(data) // 2], "garbage": os.urandom(4096), "empty": b""}[damage])
    with pytest.raises(CheckpointError, match=rf"{path.name}: cannot read the weights .*truncated or corrupt") as e:
        load_model(path.parent)
    one_line(e)


def test_bin_that_is_not_a_state_dict(bin_dir):
    torch.save([1, 2, 3], bin_dir / "pytorch_model.bin")
    with pytest.raises(CheckpointError, match=r"expected a state dict of tensors, got list"):
        load_model(bin_dir)


def test_missing_key(bin_dir):
    rewrite_bin(bin_dir, lambda sd: sd.pop("transformer.h.1.mlp.fc_in.bias"))
    with pytest.raises(CheckpointError, match=r"1 missing key\(s\) \(transformer.h.1.mlp.fc_in.bias\).*incomplete"):
        load_model(bin_dir)


def test_unexpected_key_only_legacy_buffers_are_skipped(bin_dir):
    # GPT-J's `attn.bias` / `attn.masked_bias` look alike; only CodeGen's two legacy names are skipped
    rewrite_bin(bin_dir, lambda sd: sd.update({"transformer.h.0.attn.bias": torch.zeros(3)}))
    with pytest.raises(CheckpointError, match=r"1 unexpected key\(s\) \(transformer.h.0.attn.bias\)"):
        load_model(bin_dir)


def test_misshaped_key(bin_dir):
    rewrite_bin(bin_dir, lambda sd: sd.update({"lm_head.bias": torch.zeros(95, dtype=torch.float16)}))
    with pytest.raises(CheckpointError, match=r"1 mis-shaped key\(s\) \(lm_head.bias: file \(95,\), model \(96,\)\)"):
        load_model(bin_dir)


def test_integer_weights(bin_dir):
    rewrite_bin(bin_dir, lambda sd: sd.update({"lm_head.bias": torch.zeros(96, dtype=torch.int64)}))
    with pytest.raises(CheckpointError, match=r"1 non-float key\(s\) \(lm_head.bias\)"):
        load_model(bin_dir)


def test_config_with_more_layers_than_the_weights(st_dir):
    cfg = json.loads((st_dir / "config.json").read_text())
    cfg["n_layer"] = 3
    (st_dir / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(CheckpointError, match=r"do not match config.json \(n_layer=3.*the weights have 2 layers, "
                                              r"config.json says n_layer=3; use the config.json that came with") as e:
        load_model(st_dir)
    one_line(e)


def test_config_with_another_width(st_dir):
    cfg = json.loads((st_dir / "config.json").read_text())
    cfg.update(n_embd=64, n_head=4)
    (st_dir / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(CheckpointError, match=r"mis-shaped key\(s\) \(.*file \(.*model .*use the config.json"):
        load_model(st_dir)


def test_invalid_config(st_dir):
    cfg = json.loads((st_dir / "config.json").read_text())
    cfg["n_head"] = 5
    (st_dir / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(ConfigError, match=r"config.json: config field n_embd=32 must be divisible by n_head=5"):
        load_model(st_dir)
    (st_dir / "config.json").write_text("{not json")
    with pytest.raises(ConfigError, match=r"config.json: not valid JSON"):
        load_model(st_dir)


def test_auto_dtype():
    assert resolve_dtype("auto", "cpu") == torch.float32
    assert resolve_dtype("auto", "cuda:0") == torch.float16


@pytest.mark.parametrize("dtype", [torch.int8, torch.float64, "float8", "int4"])
def test_unsupported_dtype(st_dir, dtype):
    with pytest.raises(DeviceError, match=r"dtype .* is not supported; use float32, float16 or bfloat16"):
        load_model(st_dir, dtype=dtype)


def test_unknown_device(st_dir):
    with pytest.raises(DeviceError, match=r"device 'gpu0' is not a torch device.*use cpu, cuda or cuda:N"):
        load_model(st_dir, device="gpu0")


def test_cuda_device_that_does_not_exist(st_dir):
    device = "cuda:99" if torch.cuda.is_available() else "cuda"
    expect = r"does not exist" if torch.cuda.is_available() else r"sees no CUDA GPU; use device=cpu"
    with pytest.raises(DeviceError, match=expect):
        load_model(st_dir, device=device)


def test_dtype_the_device_cannot_run(monkeypatch):
    real = torch.nn.functional.scaled_dot_product_attention

    def no_half(q, k, v, **kw):
        if q.dtype == torch.float16:
            raise RuntimeError('"baddbmm_cpu" not implemented for \'Half\'')
        return real(q, k, v, **kw)

    monkeypatch.setattr(torch.nn.functional, "scaled_dot_product_attention", no_half)
    with pytest.raises(DeviceError, match=r"device 'cpu' cannot run float16 \(RuntimeError: .*Half.*use dtype=float32"):
        check_device("cpu", torch.float16)
    assert check_device("cpu", torch.float32) == torch.device("cpu")


def test_repo_neither_cached_nor_reachable_offline(hub_cache):
    with pytest.raises(CheckpointError) as e:
        load_model("Salesforce/codegen-2B-mono")
    msg = one_line(e)
    for part in ("Salesforce/codegen-2B-mono is neither a local folder nor in the Hugging Face cache",
                 str(hub_cache), "HF_HUB_OFFLINE is set", "hf download Salesforce/codegen-2B-mono", "HF_HOME"):
        assert part in msg


def test_the_hub_host_unreachable_fails_fast_to_the_cache(hub_cache, monkeypatch):
    import huggingface_hub
    from huggingface_hub import constants

    monkeypatch.delenv("HF_HUB_OFFLINE")
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(constants, "ENDPOINT", "https://hub.invalid")

    def must_not_be_called(*a, **kw):
        raise AssertionError("the Hub API was called although its host is unreachable")

    monkeypatch.setattr(huggingface_hub, "list_repo_files", must_not_be_called)
    with pytest.raises(CheckpointError, match=r"nor in the Hugging Face cache .*the Hub cannot be reached"):
        load_model("Salesforce/codegen-6B-mono")


def test_repo_unreachable_online(hub_cache, monkeypatch):
    import huggingface_hub
    from huggingface_hub import constants

    monkeypatch.delenv("HF_HUB_OFFLINE")
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)

    def no_network(*a, **kw):
        raise ConnectionError("Name or service not known")

    monkeypatch.setattr(huggingface_hub, "list_repo_files", no_network)
    monkeypatch.setattr(hub, "_endpoint_reachable", lambda endpoint: True)  # DNS answers, the Hub does not
    with pytest.raises(CheckpointError, match=r"nor in the Hugging Face cache .*the Hub cannot be reached.*HF_HOME"):
        load_model("Salesforce/codegen-6B-mono")


def test_repo_not_on_the_hub(hub_cache, monkeypatch):
    import huggingface_hub
    from huggingface_hub import constants
    from huggingface_hub.errors import RepositoryNotFoundError

    monkeypatch.delenv("HF_HUB_OFFLINE")
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)

    def not_found(*a, **kw):
        e = RepositoryNotFoundError.__new__(RepositoryNotFoundError)
        Exception.__init__(e, "404")
        raise e

    monkeypatch.setattr(huggingface_hub, "list_repo_files", not_found)
    monkeypatch.setattr(hub, "_endpoint_reachable", lambda endpoint: True)  # a Hub that answers 404
    with pytest.raises(CheckpointError, match=r"Salesfroce/codegen-350M-mono is not a local folder, and the Hub has no"):
        load_model("Salesfroce/codegen-350M-mono")
