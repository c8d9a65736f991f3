"""Sampling transforms (codegen_model.sampling): counters, top-p/top-k sets, padding rows, greedy limits."""

from __future__ import annotations

import math

import pytest
import torch

from codegen_model.sampling import (
    MAX_ATTEMPTS,
    counter_uniform,
    row_key,
    row_params,
    sample_tokens,
    top_k_mask,
    top_p_mask,
)


def params(n, temperature=1.0, top_p=1.0, top_k=0, key="k", step=0, offset=0):
    keys = [row_key(0, key, offset + i) for i in range(n)]
    return row_params([temperature] * n, [top_p] * n, [top_k] * n, keys, [step] * n, "cpu")


def log_probs(*probs):
    return torch.log(torch.tensor([probs], dtype=torch.float32))


def draws(logits, n, **kw):
    """n independent draws (sample indices 0..n-1) from one row of logits."""
    return sample_tokens(logits.expand(n, -1).contiguous(), logits.shape[-1], params(n, **kw))


# ---------------------------------------------------------------------------- counters


def test_row_key_is_stable_across_runs_and_machines():
    # Changing this changes every sample of every stored run: resuming would mix two streams.
    assert row_key(0, "HumanEval/0", 0) == row_key(0, "HumanEval/0", 0)
    assert row_key(0, "HumanEval/0", 0) == (3062936834, 1477814988)
    assert len({row_key(s, k, i) for s in (0, 1) for k in ("a", "b") for i in range(50)}) == 200
    u = counter_uniform(torch.tensor([1, 2**32 - 1]), torch.tensor([2, 0]), torch.tensor([3, 1000]), 0)
    assert u.tolist() == [0.8853148818016052, 0.17034727334976196]


def test_counter_uniform_is_a_function_of_key_step_and_attempt_only():
    keys = [row_key(3, "x", i) for i in range(64)]
    hi = torch.tensor([k[0] for k in keys])
    lo = torch.tensor([k[1] for k in keys])
    step = torch.arange(64) % 7
    u = counter_uniform(hi, lo, step, 0)
    assert u.dtype == torch.float32 and bool((u > 0).all()) and bool((u < 1).all())
    perm = torch.randperm(64)
    assert torch.equal(counter_uniform(hi[perm], lo[perm], step[perm], 0), u[perm])  # batch order is irrelevant
    assert torch.equal(counter_uniform(hi[5:6], lo[5:6], step[5:6], 0), u[5:6])  # alone == in a batch
    assert not torch.equal(counter_uniform(hi, lo, step, 1), u)
    assert not torch.equal(counter_uniform(hi, lo, step + 1, 0), u)


def test_counter_uniform_looks_uniform():
    hi, lo = torch.full((20000,), 12345), torch.full((20000,), 678)
    u = counter_uniform(hi, lo, torch.arange(20000), 0)
    assert abs(u.mean().item() - 0.5) < 0.01
    counts = torch.histc(u, bins=10, min=0, max=1)
    assert counts.min() > 1800 and counts.max() < 2200  # 2000 expected per bin
    assert len(set(u.tolist())) > 19900


# ---------------------------------------------------------------------------- top-p / top-k sets


def test_top_p_keeps_the_smallest_set_whose_mass_reaches_p():
    logits = log_probs(0.05, 0.5, 0.15, 0.3)  # sorted: 1 (0.5), 3 (0.3), 2 (0.15), 0 (0.05)
    assert top_p_mask(logits, 0.3).tolist() == [[False, True, False, False]]
    assert top_p_mask(logits, 0.5).tolist() == [[False, True, False, False]]  # 0.5 reaches 0.5
    assert top_p_mask(logits, 0.79).tolist() == [[False, True, False, True]]
    assert top_p_mask(logits, 0.81).tolist() == [[False, True, True, True]]
    assert top_p_mask(logits, 0.96).tolist() == [[True, True, True, True]]
    assert top_p_mask(logits, 1.0).tolist() == [[True, True, True, True]]


def test_top_p_keeps_ties_of_the_last_kept_token_and_never_zero_mass():
    logits = log_probs(0.4, 0.2, 0.2, 0.2)
    assert top_p_mask(logits, 0.5).tolist() == [[True, True, True, True]]
    assert top_p_mask(logits, 0.3).tolist() == [[True, False, False, False]]
    with_inf = torch.tensor([[0.0, float("-inf"), 1.0]])
    assert top_p_mask(with_inf, 1.0).tolist() == [[True, False, True]]


def test_top_k_mask():
    logits = torch.tensor([[0.1, 3.0, 2.0, -1.0, 2.5]])
    assert top_k_mask(logits, 2).tolist() == [[False, True, False, False, True]]
    assert bool(top_k_mask(logits, 0).all()) and bool(top_k_mask(logits, 9).all())


@pytest.mark.parametrize("top_p, kept", [(0.79, {1, 3}), (0.81, {1, 2, 3}), (0.3, {1})])
def test_sampler_draws_only_and_all_of_the_top_p_set_in_proportion(top_p, kept):
    probs = [0.05, 0.5, 0.15, 0.3]
    tokens = draws(log_probs(*probs), 4000, top_p=top_p).tolist()
    assert set(tokens) == kept
    mass = sum(probs[t] for t in kept)
    for t in kept:
        expected = probs[t] / mass
        assert abs(tokens.count(t) / 4000 - expected) < 4 * math.sqrt(expected * (1 - expected) / 4000) + 1e-9


def test_sampler_exact_fallback_after_rejections():
    # A flat distribution with top_p tiny: the set is one token of mass 1/V, so every rejection
    # attempt fails and the sorted fallback must decide, still inside the set.
    logits = torch.zeros(1, 1000)
    logits[0, 123] = 1e-3
    tokens = draws(logits, 64, top_p=1e-4)
    assert set(tokens.tolist()) == {123}
    assert MAX_ATTEMPTS >= 2


def test_top_k_then_top_p_inside_it():
    probs = [0.05, 0.5, 0.15, 0.3]
    assert set(draws(log_probs(*probs), 2000, top_k=2).tolist()) == {1, 3}
    assert set(draws(log_probs(*probs), 2000, top_k=1).tolist()) == {1}
    # top-p renormalised within the top 3 (0.95 mass): 0.5/0.95 < 0.6 <= 0.8/0.95 keeps {1, 3}
    assert set(draws(log_probs(*probs), 2000, top_k=3, top_p=0.6).tolist()) == {1, 3}


def test_near_zero_temperature_equals_greedy():
    torch.manual_seed(0)
    logits = torch.randn(32, 5000) * 3
    greedy = sample_tokens(logits, 5000, params(32, temperature=0.0))
    assert torch.equal(greedy, logits.argmax(-1))
    for kw in ({}, {"top_p": 0.95}, {"top_k": 40}):
        assert torch.equal(sample_tokens(logits, 5000, params(32, temperature=1e-5, **kw)), greedy)


@pytest.mark.parametrize("kw", [{"temperature": 0.0}, {"temperature": 1.0}, {"temperature": 0.8, "top_p": 0.95},
                                {"temperature": 0.8, "top_k": 50}])
def test_padding_rows_are_never_sampled(kw):
    torch.manual_seed(0)
    vocab, rows = 300, 384
    logits = torch.randn(64, rows)
    logits[:, vocab:] = 1e4  # the padding rows would win every draw
    tokens = sample_tokens(logits, vocab, params(64, **kw))
    assert int(tokens.max()) < vocab


def test_sampling_is_row_invariant_in_any_batch():
    """A row's token is the same alone, in any batch, at any position, with mixed parameters."""
    torch.manual_seed(0)
    V = 51200
    logits = torch.randn(16, V) * 2
    temps = [0.0, 0.2, 0.8, 1.0] * 4
    top_ps = [0.95, 1.0, 0.9, 0.5] * 4
    top_ks = [0, 0, 0, 40, 0, 0, 0, 0] * 2
    keys = [row_key(7, "row", i) for i in range(16)]
    steps = list(range(16))

    def run(idx):
        rp = row_params([temps[i] for i in idx], [top_ps[i] for i in idx], [top_ks[i] for i in idx],
                        [keys[i] for i in idx], [steps[i] for i in idx], "cpu")
        return sample_tokens(logits[idx], V, rp).tolist()

    alone = [run([i])[0] for i in range(16)]
    assert run(list(range(16))) == alone
    perm = torch.randperm(16).tolist()
    assert run(perm) == [alone[i] for i in perm]
    assert run(list(range(3, 10))) == alone[3:10]
