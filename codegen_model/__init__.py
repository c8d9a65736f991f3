"""Our own CodeGen in pure PyTorch: config, model, weights, tokenizer and the sampling engine.

The documented public API (docs/api.md): `CodeGenConfig`, `CodeGenTokenizer`, `CodeGenModel`,
`CodeGenForCausalLM` (with `generate`), called as the Transformers documentation of CodeGen
describes. Imports torch, tokenizers, huggingface_hub and safetensors only (never transformers),
so it runs on a bare GPU box.
"""

from .cache import DynamicCache
from .config import CodeGenConfig, ConfigError
from .generator import Completion, Generator, Request, SamplingParams, StopRule
from .model import CodeGenForCausalLM, CodeGenModel
from .outputs import BaseModelOutputWithPast, CausalLMOutputWithPast
from .tokenizer import BatchEncoding, CodeGenTokenizer

__all__ = [
    "CodeGenConfig", "ConfigError", "CodeGenTokenizer", "BatchEncoding", "CodeGenForCausalLM", "CodeGenModel",
    "DynamicCache", "BaseModelOutputWithPast", "CausalLMOutputWithPast",
    "Completion", "Generator", "Request", "SamplingParams", "StopRule",
]
