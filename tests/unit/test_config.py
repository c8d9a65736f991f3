"""CodeGenConfig: reading config.json, validation messages, and the released checkpoints' sizes
(conf/model/*.yaml and docs/checkpoints.md are checked against the configs here)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import torch
import yaml

from codegen_model.config import CodeGenConfig, ConfigError
from codegen_model.model import CodeGenForCausalLM

REPO = Path(__file__).resolve().parents[2]
RELEASED = {  # the released config.json values (n_layer, n_embd, n_head, rotary_dim)
    "350M": (20, 1024, 16, 32), "2B": (32, 2560, 32, 64), "6B": (33, 4096, 16, 64), "16B": (34, 6144, 24, 64),
}
# A codegen-350M-mono config.json as the Hub serves it (transformers-era keys included).
HUB_350M = {
    "activation_function": "gelu_new", "architectures": ["CodeGenForCausalLM"], "attn_pdrop": 0.0,
    "bos_token_id": 1, "embd_pdrop": 0.0, "eos_token_id": 50256, "gradient_checkpointing": False,
    "initializer_range": 0.02, "layer_norm_epsilon": 1e-05, "model_type": "codegen", "n_ctx": 2048,
    "n_embd": 1024, "n_head": 16, "n_inner": None, "n_layer": 20, "n_positions": 2048,
    "resid_pdrop": 0.0, "rotary_dim": 32, "scale_attn_weights": True, "summary_activation": None,
    "summary_first_dropout": 0.1, "summary_proj_to_labels": True, "summary_type": "cls_index",
    "summary_use_proj": True, "task_specific_params": {"text-generation": {"do_sample": True, "max_length": 50,
                                                                            "temperature": 1.0}},
    "tie_word_embeddings": False, "tokenizer_class": "GPT2Tokenizer", "torch_dtype": "float16",
    "transformers_version": "4.21.0.dev0", "use_cache": True, "vocab_size": 51200,
}


def released_config(n_layer, n_embd, n_head, rotary_dim) -> CodeGenConfig:
    """A released checkpoint's config: its sizes, the released vocabulary of 51200 rows."""
    return CodeGenConfig(vocab_size=51200, n_layer=n_layer, n_embd=n_embd, n_head=n_head, rotary_dim=rotary_dim)


def write(tmp_path, data) -> Path:
    path = tmp_path / "config.json"
    path.write_text(json.dumps(data) if not isinstance(data, str) else data)
    return path


def test_reads_a_hub_config(tmp_path):
    cfg = CodeGenConfig.from_json(write(tmp_path, HUB_350M))
    assert (cfg.n_layer, cfg.n_embd, cfg.n_head, cfg.rotary_dim, cfg.vocab_size) == (20, 1024, 16, 32, 51200)
    assert cfg.head_dim == 64 and cfg.inner_dim == 4096 and cfg.n_positions == 2048
    assert cfg.bos_token_id == 1  # read from the file, not the class default


def test_roundtrip_through_json(tmp_path):
    cfg = CodeGenConfig(n_layer=3, n_embd=48, n_head=4, rotary_dim=6, vocab_size=300, n_inner=100)
    again = CodeGenConfig.from_json(write(tmp_path, cfg.to_dict()))
    assert again == cfg


@pytest.mark.parametrize("change,message", [
    ({"n_head": 12}, r"n_embd=1024 must be divisible by n_head=12"),
    ({"n_embd": 1002, "n_head": 6}, r"n_embd=1002 must be divisible by 4: CodeGen packs qkv_proj"),
    ({"n_embd": 90, "n_head": 6}, r"n_embd=90 must be divisible by 4"),
    ({"rotary_dim": 33}, r"rotary_dim=33 must be even and in \(0, head_dim=64\]"),
    ({"rotary_dim": 128}, r"rotary_dim=128 must be even"),
    ({"n_layer": 0}, r"n_layer must be a positive integer, got 0"),
    ({"vocab_size": "51200"}, r"vocab_size must be a positive integer, got '51200'"),
    ({"n_inner": 0}, r"n_inner must be a positive integer or null"),
    ({"activation_function": "gelu_bogus"}, r"activation_function='gelu_bogus' is not supported; use one of gelu_new"),
    ({"attn_pdrop": 1.5}, r"attn_pdrop must be a probability in \[0, 1\], got 1.5"),
    ({"tie_word_embeddings": True}, r"tie_word_embeddings=true: CodeGen's lm_head is untied"),
    ({"model_type": "gptj"}, r"model_type='gptj': this harness loads 'codegen' models"),
])
def test_validation_names_the_field(tmp_path, change, message):
    path = write(tmp_path, {**HUB_350M, **change})
    with pytest.raises(ConfigError, match=message) as e:
        CodeGenConfig.from_json(path)
    assert str(e.value).startswith(str(path)) and "\n" not in str(e.value)


def test_unreadable_config_files(tmp_path):
    with pytest.raises(ConfigError, match=r"no config.json"):
        CodeGenConfig.from_json(tmp_path / "config.json")
    with pytest.raises(ConfigError, match=r"not valid JSON"):
        CodeGenConfig.from_json(write(tmp_path, '{"n_layer": 2,'))
    with pytest.raises(ConfigError, match=r"expected a JSON object"):
        CodeGenConfig.from_json(write(tmp_path, "[1, 2]"))


@pytest.mark.parametrize("size", RELEASED)
def test_n_params_counts_the_module(size):
    n_layer, n_embd, n_head, rotary_dim = RELEASED[size]
    cfg = released_config(n_layer, n_embd, n_head, rotary_dim)
    with torch.device("meta"):  # shapes only, no memory
        model = CodeGenForCausalLM(cfg)
    assert cfg.n_params() == sum(p.numel() for p in model.parameters())


def model_yamls() -> dict[str, dict]:
    return {p.stem: yaml.safe_load(p.read_text()) for p in sorted((REPO / "conf" / "model").glob("*.yaml"))}


def test_one_yaml_per_released_checkpoint():
    yamls = model_yamls()
    for size, (n_layer, n_embd, n_head, rotary_dim) in RELEASED.items():
        for data in ("nl", "multi", "mono"):
            name = f"codegen-{size}-{data}"
            y = yamls[name]
            assert y["name"] == name and y["kind"] == "hub" and y["path"] == f"Salesforce/{name}"
            assert y["revision"] is None and y["dtype"] == "auto" and y["device"] == "auto"
            assert (y["n_layer"], y["n_embd"], y["n_head"], y["rotary_dim"]) == (n_layer, n_embd, n_head, rotary_dim)
            cfg = released_config(n_layer, n_embd, n_head, rotary_dim)
            assert y["n_params"] == cfg.n_params(), name


def test_tiny_random_yaml_matches_the_tiny_model():
    from codegen_model.tiny import tiny_config

    y = model_yamls()["tiny-random"]
    cfg = tiny_config()
    assert y["kind"] == "tiny-random" and y["name"] == "tiny-random"
    assert (y["n_layer"], y["n_embd"], y["n_head"], y["rotary_dim"], y["n_params"]) == (
        cfg.n_layer, cfg.n_embd, cfg.n_head, cfg.rotary_dim, cfg.n_params())


def test_checkpoint_table_in_docs():
    text = (REPO / "docs" / "checkpoints.md").read_text()
    rows = re.findall(r"^\| `Salesforce/codegen-(\w+)-(\w+)` \|(.*)\|$", text, re.MULTILINE)
    assert len(rows) == 12
    for size, _, cells in rows:
        n_layer, n_embd, n_head, rotary_dim = RELEASED[size]
        n = released_config(n_layer, n_embd, n_head, rotary_dim).n_params()
        kv = 2 * n_layer * n_embd * 2 * 2048
        assert [c.strip() for c in cells.split("|")] == [
            str(n_layer), str(n_embd), str(n_head), str(rotary_dim), f"{n:,}",
            f"{4 * n / 2**30:.2f} GiB", f"{2 * n / 2**30:.2f} GiB", f"{kv / 2**30:.2f} GiB"]
