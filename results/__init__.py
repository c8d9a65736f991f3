"""Run records, the run store, pass@k metrics, tables, paper comparisons and the CI gate (docs/design.md §5).

Imports pandas, numpy, matplotlib and the standard library only; nothing else of ours.
"""
