"""MTPB, the CodeGen paper's Multi-Turn Programming Benchmark: problems, the multi-turn
conversation, the official scoring run in the sandbox, errata, metrics (docs/design.md §4).

    python -m mtpb model=codegen-350M-mono              # run (Hydra app over conf/)
    python -m mtpb.evaluate samples.jsonl               # score existing generations

Modules: `data` (problems, pinned download), `prompts` (prefix, turns, official truncation,
assembly), `conversation` (all conversations through one Generator), `equivalence` + `child` +
`harness` (the official check, run inside the sandboxed child), `execution` (sandbox batches and
pool), `errata`, `metrics`, `perplexity`, `runner`, `config`, `evaluate`.
Imports codegen_model, sandbox and results; never humaneval.
"""
