"""HumanEval (Chen et al. 2021) end to end: problems, stop rule, program assembly, sandboxed
execution, resumable runs and pass@k (docs/design.md §4). `python -m humaneval` runs a model;
`python -m humaneval.evaluate SAMPLES.jsonl` scores existing generations.

Imports codegen_model, sandbox and results; never mtpb.
"""
