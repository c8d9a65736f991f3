"""`CodeGenForCausalLM.generate`, as the Transformers documentation describes it (docs/design.md §2).

Source followed: transformers' `GenerationMixin.generate` and `GenerationConfig` defaults (5.x):
greedy unless `do_sample`; without `max_new_tokens` or `max_length`, 20 new tokens (capped at
`n_positions`); `max_new_tokens` wins over `max_length` (a total length, prompt included);
`eos_token_id` from the config (50256) unless given (an int or a list), `pad_token_id` defaulting
to the first eos id; rows that finished are filled with the pad id until every row is done or
the length is reached; position ids from the attention mask (left padding starts each row at 0);
without an attention mask, every token is attended, unless the pad id differs from eos and occurs
in the input, then pad tokens are masked. The result is the prompt plus the new tokens, a
LongTensor (B * num_return_sequences, T_prompt + new).

The loop is the model's own forward with its `DynamicCache` (one new token per row per step).
Sampling (`do_sample=True`) is not transformers' multinomial draw: tokens come from this package's
counter-based sampler (`sampling.py`; temperature, then top-k, then top-p, the order of
transformers' warpers), so a row's draws depend only on (seed, row index, step). `seed` (our
extension) names the stream; without it one is drawn from torch's global generator, so
`torch.manual_seed(n)` makes `generate` reproducible as in transformers (though with different
tokens). Arguments transformers has but this loop does not implement (beams, penalties,
streamers, ...) raise TypeError naming them.
"""

from __future__ import annotations

import logging
from typing import Sequence

import torch

from .cache import DynamicCache
from .sampling import row_key, row_params, sample_tokens

log = logging.getLogger(__name__)

DEFAULT_MAX_NEW = 20  # transformers' GenerationConfig.max_length, applied to the new tokens (5.x)

# Arguments with transformers' defaults that are accepted only at those defaults.
_AT_DEFAULT = {"num_beams": 1, "num_beam_groups": 1, "repetition_penalty": 1.0, "length_penalty": 1.0,
               "no_repeat_ngram_size": 0, "typical_p": 1.0, "epsilon_cutoff": 0.0, "eta_cutoff": 0.0,
               "diversity_penalty": 0.0, "encoder_repetition_penalty": 1.0, "output_attentions": False,
               "output_hidden_states": False, "output_scores": False, "output_logits": False,
               "return_dict_in_generate": False, "streamer": None, "logits_processor": None,
               "stopping_criteria": None, "prefix_allowed_tokens_fn": None, "bad_words_ids": None,
               "force_words_ids": None, "constraints": None, "min_p": None, "penalty_alpha": None,
               "assistant_model": None, "early_stopping": False, "renormalize_logits": False,
               "synced_gpus": False, "suppress_tokens": None, "begin_suppress_tokens": None,
               "sequence_bias": None, "guidance_scale": None, "stop_strings": None, "tokenizer": None}


def _ids_tensor(value, device) -> torch.Tensor | None:
    if value is None:
        return None
    if isinstance(value, int):
        return torch.tensor([value], device=device)
    return torch.as_tensor(list(value) if not isinstance(value, torch.Tensor) else value, device=device).reshape(-1)


class GenerationMixin:
    """`generate` for CodeGenForCausalLM (see the module docstring for the protocol)."""

    @torch.no_grad()
    def generate(self, input_ids: torch.Tensor | None = None, attention_mask: torch.Tensor | None = None,
                 max_length: int | None = None, max_new_tokens: int | None = None, min_length: int = 0,
                 min_new_tokens: int | None = None, do_sample: bool = False, temperature: float = 1.0,
                 top_k: int = 50, top_p: float = 1.0, num_return_sequences: int = 1,
                 eos_token_id: int | Sequence[int] | None = None, pad_token_id: int | None = None,
                 bos_token_id: int | None = None, use_cache: bool = True, position_ids: torch.Tensor | None = None,
                 token_type_ids: torch.Tensor | None = None, seed: int | None = None, inputs=None,
                 **unsupported) -> torch.LongTensor:
        """Prompt + new tokens, (B * num_return_sequences, T) int64 on the model's device.

        input_ids (or `inputs`): (B, T) int64 prompts, left-padded for a batch (pass the tokenizer's
        attention_mask); None starts every one of 1 row from bos_token_id. max_new_tokens /
        max_length: see the module docstring. min_new_tokens / min_length: eos is suppressed until
        reached. do_sample, temperature (> 0), top_k (0: off), top_p in (0, 1]: transformers'
        meanings; num_return_sequences > 1 needs do_sample. eos_token_id / pad_token_id /
        bos_token_id: default from the config. use_cache=False recomputes the whole sequence each
        step (same tokens, slower). seed: the sampler's stream (our extension).

        Raises TypeError for unsupported arguments (named), ValueError for invalid values (a
        non-positive temperature with do_sample, top_p outside (0, 1], lengths past n_positions,
        a mask whose shape differs from input_ids').
        """
        bad = sorted(k for k, v in unsupported.items() if k not in _AT_DEFAULT or v != _AT_DEFAULT[k])
        if bad:
            known = "" if all(k in _AT_DEFAULT for k in bad) else " (not a generate argument here)"
            raise TypeError(f"generate does not support {', '.join(f'{k}={unsupported[k]!r}' for k in bad)}{known}; "
                            "supported: input_ids, attention_mask, max_length, max_new_tokens, min_length, "
                            "min_new_tokens, do_sample, temperature, top_k, top_p, num_return_sequences, "
                            "eos_token_id, pad_token_id, bos_token_id, use_cache, position_ids, token_type_ids, "
                            "seed (docs/api.md)")
        if inputs is not None:
            if input_ids is not None:
                raise ValueError("pass the prompt once: input_ids or inputs")
            input_ids = inputs
        config, device = self.config, self.device
        if bos_token_id is None:
            bos_token_id = config.bos_token_id
        if input_ids is None:
            if bos_token_id is None:
                raise ValueError("generate needs input_ids, or a bos_token_id to start from")
            input_ids = torch.tensor([[bos_token_id]], dtype=torch.long, device=device)
        if not isinstance(input_ids, torch.Tensor) or input_ids.dim() != 2 or input_ids.is_floating_point():
            raise ValueError("input_ids must be a (batch, length) integer tensor, e.g. tokenizer(text, "
                             "return_tensors='pt')['input_ids']")
        if input_ids.shape[1] == 0:
            raise ValueError("input_ids is empty: generate needs at least one prompt token")
        ids = input_ids.to(device).long()
        B, T0 = ids.shape

        # -- special tokens (transformers' _prepare_special_tokens)
        eos = _ids_tensor(config.eos_token_id if eos_token_id is None else eos_token_id, device)
        pad = pad_token_id if pad_token_id is not None else getattr(config, "pad_token_id", None)
        if pad is None and eos is not None and eos.numel():
            pad = int(eos[0])
        if eos is not None and eos.numel() == 0:
            eos = None

        # -- the attention mask (transformers' _prepare_attention_mask_for_generation)
        if attention_mask is None:
            mask = torch.ones_like(ids)
            if pad is not None and bool((ids == pad).any()) and (eos is None or not bool((eos == pad).any())):
                mask = (ids != pad).long()
        else:
            mask = attention_mask.to(device).long()
            if mask.shape != ids.shape:
                raise ValueError(f"attention_mask has shape {tuple(mask.shape)} but input_ids {tuple(ids.shape)}")

        # -- lengths (transformers' _prepare_generated_length)
        if max_new_tokens is not None:
            if max_new_tokens < 1:
                raise ValueError(f"max_new_tokens must be >= 1, got {max_new_tokens}")
            total = T0 + max_new_tokens
        elif max_length is not None:
            total = max_length
        else:
            total = min(T0 + DEFAULT_MAX_NEW, config.n_positions)
        if total <= T0:
            raise ValueError(f"the prompt has {T0} tokens and max_length is {total}: nothing to generate; "
                             "use max_new_tokens")
        if total > config.n_positions:
            raise ValueError(f"{total} tokens (prompt + new) exceed the model's context of {config.n_positions}; "
                             "lower max_new_tokens or max_length")
        floor = T0 + min_new_tokens if min_new_tokens is not None else min_length

        # -- sampling parameters (transformers' warpers, our sampler)
        if num_return_sequences < 1:
            raise ValueError(f"num_return_sequences must be >= 1, got {num_return_sequences}")
        if do_sample:
            if not isinstance(temperature, (int, float)) or temperature <= 0:
                raise ValueError(f"temperature must be a strictly positive float with do_sample, got {temperature!r}")
            if not 0.0 < top_p <= 1.0:
                raise ValueError(f"top_p must be in (0, 1], got {top_p!r}")
            if top_k is None:
                top_k = 0
            if top_k < 0:
                raise ValueError(f"top_k must be >= 0 (0: off), got {top_k!r}")
        else:
            if num_return_sequences > 1:
                raise ValueError("greedy decoding gives one sequence per prompt: num_return_sequences > 1 needs "
                                 "do_sample=True")
            changed = [n for n, v, d in (("temperature", temperature, 1.0), ("top_k", top_k, 50), ("top_p", top_p, 1.0))
                       if v != d]
            if changed:
                log.warning("generate: do_sample is False, so %s only apply to sampling and are not used",
                            ", ".join(changed))

        n = num_return_sequences
        if n > 1:
            ids, mask = ids.repeat_interleave(n, 0), mask.repeat_interleave(n, 0)
            position_ids = None if position_ids is None else position_ids.repeat_interleave(n, 0)
            token_type_ids = None if token_type_ids is None else token_type_ids.repeat_interleave(n, 0)
        R = ids.shape[0]
        if position_ids is None:
            position_ids = (mask.cumsum(-1) - 1).masked_fill(mask == 0, 0)
        position_ids = position_ids.to(device).long().expand(R, -1)
        if do_sample:
            if seed is None:
                seed = int(torch.randint(0, 2**62, (1,)).item())  # from torch's global generator
            keys = [row_key(int(seed), "generate", r) for r in range(R)]

        cache = DynamicCache() if use_cache else None
        step_ids, step_pos, step_types = ids, position_ids, token_type_ids
        unfinished = torch.ones(R, dtype=torch.bool, device=device)
        for step in range(total - T0):
            if cache is None:  # no cache: the whole sequence every step
                step_ids, step_pos = ids, position_ids
            out = self(step_ids, past_key_values=cache, attention_mask=mask, position_ids=step_pos,
                       token_type_ids=step_types, use_cache=use_cache, logits_to_keep=1)
            logits = out.logits[:, -1]  # (R, V) fp32
            if eos is not None and ids.shape[1] < floor:
                logits[:, eos] = float("-inf")
            if do_sample:
                rows = row_params([float(temperature)] * R, [float(top_p)] * R, [int(top_k)] * R, keys, [step] * R,
                                  device)
                token = sample_tokens(logits, logits.shape[-1], rows)
            else:
                token = logits.argmax(-1)
            if eos is not None:
                token = torch.where(unfinished, token, torch.full_like(token, pad))
            ids = torch.cat([ids, token[:, None]], dim=1)
            mask = torch.cat([mask, mask.new_ones(R, 1)], dim=1)
            position_ids = torch.cat([position_ids, position_ids[:, -1:] + 1], dim=1)
            step_ids, step_pos = token[:, None], position_ids[:, -1:]
            if token_type_ids is not None:  # transformers repeats the last token type for new tokens
                token_type_ids = torch.cat([token_type_ids, token_type_ids[:, -1:]], dim=1)
                step_types = token_type_ids[:, -1:] if cache is not None else token_type_ids
            if eos is not None:
                unfinished &= ~torch.isin(token, eos)
                if not bool(unfinished.any()):
                    break
        return ids
