"""Our own CodeGen in pure PyTorch: config, model, weights, tokenizer and the sampling engine.

Imports torch, tokenizers, huggingface_hub and safetensors only, so it runs on a bare GPU box.
"""

from .config import CodeGenConfig, ConfigError
from .generator import Completion, Generator, Request, SamplingParams, StopRule
from .model import CodeGenForCausalLM, CodeGenModel, DynamicCache

__all__ = [
    "CodeGenConfig", "ConfigError", "CodeGenForCausalLM", "CodeGenModel", "DynamicCache",
    "Completion", "Generator", "Request", "SamplingParams", "StopRule",
]
