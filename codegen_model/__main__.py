"""`python -m codegen_model --model NAME_OR_PATH --prompt "def hello_world():"`: greedy completion.

The usage example of the CodeGen model card, in our harness: load the checkpoint (a local folder, a
Hub repo id, or `tiny-random`), decode greedily with a growing cache until `<|endoftext|>` or
`--max-new-tokens`, print prompt + completion. A deliberately simple loop, independent of the
sampling engine, so it is also a reference for it.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time

import torch

from .model import CodeGenForCausalLM, DynamicCache, positions_from_mask

log = logging.getLogger("codegen_model")


@torch.inference_mode()
def greedy_generate(model: CodeGenForCausalLM, prompts: list[list[int]], max_new_tokens: int,
                    eos_id: int | None = None, pad_id: int = 0, vocab_limit: int | None = None) -> list[list[int]]:
    """Greedy new tokens for each prompt (left-padded into one batch); a row stops at `eos_id`.

    `vocab_limit`: ids >= it (the model's padding rows) are never chosen.
    """
    if not prompts or any(len(p) == 0 for p in prompts):
        raise ValueError("every prompt needs at least one token")
    B, T = len(prompts), max(len(p) for p in prompts)
    device = model.device
    ids = torch.full((B, T), pad_id, dtype=torch.long, device=device)
    mask = torch.zeros((B, T), dtype=torch.long, device=device)
    for b, p in enumerate(prompts):
        ids[b, T - len(p):] = torch.tensor(p, dtype=torch.long)
        mask[b, T - len(p):] = 1
    cache = DynamicCache()
    out: list[list[int]] = [[] for _ in range(B)]
    done = torch.zeros(B, dtype=torch.bool, device=device)
    step_ids = ids
    for _ in range(max_new_tokens):
        positions = positions_from_mask(mask, step_ids.shape[1])  # each row counts from 0 past its padding
        logits = model(step_ids, attention_mask=mask, position_ids=positions, cache=cache,
                       logits_to_keep=1).logits[:, -1]
        if vocab_limit is not None:
            logits[:, vocab_limit:] = float("-inf")
        nxt = logits.argmax(-1)  # (B,)
        for b, t in enumerate(nxt.tolist()):
            if not done[b]:
                out[b].append(t)
        if eos_id is not None:
            done |= nxt == eos_id
        if bool(done.all()):
            break
        step_ids = nxt[:, None]
        mask = torch.cat([mask, torch.ones((B, 1), dtype=mask.dtype, device=device)], dim=1)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m codegen_model", description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True,
                        help="checkpoint folder, Hub repo id (e.g. Salesforce/codegen-350M-mono) or tiny-random")
    parser.add_argument("--prompt", default="def hello_world():")
    parser.add_argument("--max-new-tokens", type=int, default=128)
    parser.add_argument("--revision", default=None, help="Hub branch, tag or commit")
    parser.add_argument("--dtype", default="auto", help="auto | float32 | float16 | bfloat16")
    parser.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:N")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    if args.max_new_tokens < 1:
        parser.error(f"--max-new-tokens must be >= 1, got {args.max_new_tokens}")

    from .registry import ModelSpec, load

    kind = "tiny-random" if args.model == "tiny-random" else "hub"
    spec = ModelSpec(name=args.model, kind=kind, path=args.model, revision=args.revision,
                     dtype=args.dtype, device=args.device)
    try:
        model, tokenizer = load(spec)
    except ValueError as e:  # CheckpointError, ConfigError, DeviceError: one line, no traceback
        print(f"error: {e}", file=sys.stderr)
        return 2
    prompt_ids = tokenizer.encode(args.prompt)
    if not prompt_ids:
        parser.error("--prompt is empty")
    room = model.config.n_positions - len(prompt_ids)
    if room < 1:
        print(f"error: the prompt has {len(prompt_ids)} tokens but the model's context is "
              f"{model.config.n_positions}; shorten the prompt", file=sys.stderr)
        return 2
    t0 = time.perf_counter()
    new = greedy_generate(model, [prompt_ids], min(args.max_new_tokens, room), eos_id=tokenizer.eos_id,
                          vocab_limit=tokenizer.vocab_size)[0]
    elapsed = time.perf_counter() - t0
    if new and new[-1] == tokenizer.eos_id:
        new = new[:-1]
    print(args.prompt + tokenizer.decode(new))
    log.info("%d new tokens in %.2f s (%.1f tokens/s)", len(new), elapsed, len(new) / max(elapsed, 1e-9))
    return 0


if __name__ == "__main__":
    sys.exit(main())
