"""The engine's scheduler pieces: the slot table, the per-slot inputs, the request queue and the
swap-to-host policy for parked conversation caches (codegen_model.slots, .admission, .parking)."""

from __future__ import annotations

from collections import deque

import pytest
import torch

from codegen_model.admission import RequestQueue, Work
from codegen_model.engine import Engine
from codegen_model.generator import Request, SamplingParams
from codegen_model.kv_cache import SlotKVCache
from codegen_model.parking import ParkedCaches
from codegen_model.sampling import row_key, row_params
from codegen_model.slots import Row, SlotInputs, SlotState, SlotTable
from codegen_model.tiny import tiny_config, tiny_model, tiny_tokenizer

SAMPLED = SamplingParams(temperature=0.8, top_p=0.95, top_k=0, max_new_tokens=8, seed=1)
TOP_K = SamplingParams(temperature=0.5, top_p=1.0, top_k=20, max_new_tokens=8, seed=2)


def work(key: str, n: int = 1, conversation: str | None = None, params: SamplingParams = SAMPLED,
         offset: int = 0) -> Work:
    request = Request(key=key, prompt=[1, 2, 3], params=params, n=n, sample_offset=offset, conversation=conversation)
    return Work(request, [1, 2, 3], deque(range(offset, offset + n)))


def row(w: Work, index: int, slot: int) -> Row:
    r = w.request
    return Row(w, index, slot, row_key(r.params.seed, r.key, index), pos=len(w.ids), park=r.conversation is not None)


# ---------------------------------------------------------------------------- slot table


def test_a_slot_goes_free_running_parked_free_and_only_usable_slots_are_given_out():
    table = SlotTable(slots=8, usable=6)
    assert table.free_slots() == [0, 1, 2, 3, 4, 5]
    w = work("t0", conversation="c")
    r = row(w, 0, 2)
    table.run(r)
    assert table.state(2) is SlotState.RUNNING and table.rows() == [r] and table.is_running(("c", 0))
    parked = ParkedCaches(memory_bytes=0).park(("c", 0), [1, 2, 3], slot=2)
    table.finish(r, parked)
    assert table.state(2) is SlotState.PARKED and table.parked() == [parked] and not table.is_running(("c", 0))
    assert 2 not in table.free_slots()
    table.free(2)
    assert table.state(2) is SlotState.FREE and not table.has_rows()


def test_the_slot_table_refuses_a_transition_that_would_lose_a_row():
    table = SlotTable(slots=4, usable=4)
    first, second = row(work("a"), 0, 1), row(work("b"), 0, 1)
    table.run(first)
    with pytest.raises(AssertionError, match="slot 1 is running"):
        table.run(second)
    with pytest.raises(AssertionError, match="not parked"):
        table.free(1)
    with pytest.raises(AssertionError, match="not running"):
        table.finish(second, None)


def test_a_conversation_turn_may_take_the_slot_its_own_cache_is_parked_in_but_no_other():
    table = SlotTable(slots=4, usable=4)
    mine = ParkedCaches(memory_bytes=0).park(("c", 0), [1, 2], slot=0)
    table.occupants[0] = mine
    with pytest.raises(AssertionError):
        table.run(row(work("other", conversation="d"), 0, 0))
    table.run(row(work("next", conversation="c"), 0, 0))
    assert table.state(0) is SlotState.RUNNING


def test_the_decoded_range_is_the_smallest_aligned_to_four_rows():
    w = work("k", n=3)
    assert SlotTable.span([row(w, 0, 5), row(w, 1, 6)]) == (4, 8)
    assert SlotTable.span([row(w, 0, 0), row(w, 1, 9)]) == (0, 12)
    assert SlotTable.span([row(w, 0, 3)]) == (0, 4)


# ---------------------------------------------------------------------------- per-slot inputs


def test_row_params_of_slots_equal_those_built_from_the_rows_sampling_parameters():
    inputs = SlotInputs(slots=4, device=torch.device("cpu"))
    a, b = row(work("a", params=SAMPLED), 0, 0), row(work("b", params=TOP_K), 3, 2)
    for r in (a, b):
        inputs.start(r)
    got = inputs.row_params(slice(0, 4), [a, b])
    idle = (0.0, 1.0, 0, (0, 0))
    per_slot = [(SAMPLED.temperature, SAMPLED.top_p, SAMPLED.top_k, a.key), idle,
                (TOP_K.temperature, TOP_K.top_p, TOP_K.top_k, b.key), idle]
    want = row_params(*zip(*per_slot), [0] * 4, "cpu")
    for name in ("temperature", "top_p", "top_k", "key_hi", "key_lo", "step"):
        assert torch.equal(getattr(got, name), getattr(want, name)), name
    flags = ("any_sampled", "any_top_p", "any_top_k", "all_top_k", "max_top_k")
    assert [getattr(got, f) for f in flags] == [getattr(want, f) for f in flags] == [True, True, True, False, 20]
    picked = inputs.row_params(torch.tensor([2]), [b])
    assert picked.top_k.tolist() == [20] and picked.all_top_k and not picked.any_top_p


def test_a_decode_step_advances_only_the_rows_that_are_generating_and_a_cleared_slot_is_idle():
    inputs = SlotInputs(slots=4, device=torch.device("cpu"))
    r = row(work("a"), 0, 1)
    inputs.start(r)
    inputs.feed(r, token=7)
    assert (inputs.token[1].item(), inputs.position[1].item(), inputs.draw[1].item()) == (7, 3, 1)
    inputs.advance(0, 4, torch.tensor([9, 8, 9, 9]))
    assert inputs.token.tolist() == [0, 8, 0, 0] and inputs.position.tolist() == [0, 4, 0, 0]
    assert inputs.draw.tolist() == [0, 2, 0, 0]
    inputs.clear(1)
    assert not inputs.active.any() and inputs.temperature[1] == 0 and inputs.key_hi[1] == inputs.key_lo[1] == 0
    assert inputs.top_p[1] == 1.0 and inputs.top_k[1] == 0


# ---------------------------------------------------------------------------- request queue


def test_a_conversation_samples_turns_wait_in_order_and_a_work_leaves_the_queue_when_all_are_admitted():
    queue = RequestQueue()
    t0, t1 = work("c/t0", n=2, conversation="c"), work("c/t1", n=1, conversation="c", offset=1)
    queue.push(t0)
    queue.push(t1)
    assert list(queue) == [t0, t1] and queue.waiting() == 3
    assert queue.next_turn(("c", 1)) is t0 and queue.has_turn_queued(("c", 0))
    queue.take(t0, 1)
    assert queue.next_turn(("c", 1)) is t1 and len(queue) == 2
    queue.take(t0, 0)
    assert list(queue) == [t1] and not queue.has_turn_queued(("c", 0))
    queue.take(t1, 1)
    assert not queue and queue.next_turn(("c", 1)) is None


# ---------------------------------------------------------------------------- swap-to-host policy


def filled_cache(slots: int = 4, capacity: int = 64) -> SlotKVCache:
    cache = SlotKVCache(tiny_config(), slots, capacity, torch.float32, "cpu")
    cache.k.normal_()
    cache.v.normal_()
    return cache


def test_the_victim_is_the_least_recently_parked_cache_in_a_slot_whose_next_turn_is_not_queued():
    caches = ParkedCaches(memory_bytes=2**30)
    old, mid, new = (caches.park(("c", i), [1, 2], slot=i) for i in range(3))
    assert caches.victim(lambda key: False) is old
    assert caches.victim(lambda key: key == ("c", 0)) is mid
    caches.swap_out(mid, filled_cache())
    assert caches.victim(lambda key: key == ("c", 0)) is new  # a swapped-out cache holds no slot
    assert caches.victim(lambda key: True) is None


def test_swap_out_and_in_move_a_cache_exactly_and_free_its_slot():
    cache = filled_cache()
    caches = ParkedCaches(memory_bytes=2**30)
    parked = caches.park(("c", 0), list(range(10)), slot=1)
    k, v = cache.k[:, 1, :, :10].clone(), cache.v[:, 1, :, :10].clone()
    assert caches.swap_out(parked, cache) == 0
    assert parked.slot is None and caches.host_bytes == parked.nbytes == 2 * k.numel() * 4
    cache.k[:, 1].zero_()
    taken = caches.take(("c", 0))
    assert caches.host_bytes == 0 and len(caches) == 0
    keep = taken.reusable(list(range(8)) + [99])
    assert keep == 8
    ParkedCaches.swap_in(taken, cache, slot=3, keep=keep)
    assert torch.equal(cache.k[:, 3, :, :8], k[:, :, :8]) and torch.equal(cache.v[:, 3, :, :8], v[:, :, :8])
    assert taken.reusable(list(range(10))) == 9  # one token is always prefilled, for the logits


def test_host_copies_over_the_memory_cap_are_dropped_oldest_first():
    cache = filled_cache()
    one = 2 * 2 * 4 * 10 * 16 * 4  # keys + values of 10 tokens of the tiny model in fp32
    caches = ParkedCaches(memory_bytes=int(2.5 * one))
    parked = [caches.park(("c", i), list(range(10)), slot=i) for i in range(4)]
    assert [caches.swap_out(p, cache) for p in parked] == [0, 0, 1, 1]
    assert caches.get(("c", 0)) is None and caches.get(("c", 1)) is None
    assert caches.host_bytes == 2 * one and len(caches) == 2


def test_release_drops_a_conversations_caches_and_names_the_slots_they_held():
    cache = filled_cache()
    caches = ParkedCaches(memory_bytes=2**30)
    in_slot, other = caches.park(("c", 0), [1], slot=2), caches.park(("d", 0), [1], slot=0)
    caches.swap_out(caches.park(("c", 1), [1, 2], slot=3), cache)
    assert caches.release("c") == [in_slot.slot]
    assert len(caches) == 1 and caches.get(("d", 0)) is other and caches.host_bytes == 0


def test_a_swapped_out_cache_dropped_to_free_a_slot_for_its_own_next_turn_is_prefilled_from_scratch():
    """One slot: turn 0 of `a` is parked, `b` swaps it out, then `a`'s next turn swaps `b` out; the
    host copies exceed the cap, so `a`'s own (older) copy is dropped on the way."""
    model, tok = tiny_model(), tiny_tokenizer()
    params = SamplingParams(temperature=0.0, max_new_tokens=8)
    cached = len("# a\n") + params.max_new_tokens - 1  # tokens a parked turn leaves cached
    per_token = 2 * model.config.n_layer * model.config.n_embd * 4
    engine = Engine(model, tok, max_batch=1, ignore_eos=True, park_memory_mb=1.5 * cached * per_token / 2**20)

    def turn(key: str, prompt: str, conversation: str | None):
        engine.submit(Request(key=key, prompt=prompt, params=params, conversation=conversation))
        (done,) = engine.completions()
        return done

    a0 = turn("a/t0", "# a\n", "a")
    turn("b/t0", "# b\n", "b")
    assert (engine.stats.parked_moved, engine.stats.parked_dropped) == (1, 0)
    history = "# a\n" + a0.text + "\n# more\n"
    a1 = turn("a/t1", history, "a")
    assert (engine.stats.parked_moved, engine.stats.parked_dropped) == (2, 1)
    assert engine.stats.reused_tokens == 0
    fresh = Engine(model, tok, max_batch=1, ignore_eos=True)
    fresh.submit(Request(key="a/t1", prompt=history, params=params))
    assert a1.token_ids == next(iter(fresh.completions())).token_ids
    engine.release("a")
    engine.release("b")
    assert all(o is None for o in engine._owner) and not engine._parked and not engine._works
