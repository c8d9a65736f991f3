"""The sampling engine: a `Generator` over our CodeGen with a slot KV cache (docs/design.md §2).

Requests are checked and queued by `submit`; `completions()` runs the scheduler until nothing is
pending, one iteration at a time:

1. admit (`_admit`): first every parked conversation cache whose next turn is queued continues in
   its own slot (`_continue`: the full history is re-tokenised, the longest common token prefix
   with the cached tokens is kept, only the rest is prefilled). Then, in queue order, waiting
   samples take free slots, lowest first, or a slot the swap policy frees by moving an idle parked
   cache to host memory. A request's prompt is prefilled once and its keys/values copied into each
   of its samples' slots (`_start_fresh`: prefix sharing). A row's first token is drawn from its
   prefill's logits.
2. decode (`_step`): one token for every row of the smallest slot range [lo, hi) holding the
   running rows, aligned to `ROW_TILE`; rows of free or parked slots in the range are computed and
   discarded (their keys go to a scratch column).
3. finish (`_accept`): each new token is checked against eos, the stop rule and the token budget;
   a finished row yields its `Completion` and frees its slot (or parks its cache), so the next
   waiting sample is admitted before the next decode step (continuous batching).

Where each concern lives: the queue and prompt checks in `admission`, slot states and the per-slot
inputs in `slots`, parked caches and the swap-to-host policy in `parking`, the forward passes in
`decode`, the cache buffers in `kv_cache`, the draws in `sampling`.

Determinism (fp32 on CPU, exact): a sample's tokens depend only on (prompt, params, seed, key,
sample index), never on max_batch, request order, the other requests, or how a request's samples
are split. Every piece of a sample's computation is fixed by the sample itself: its prompt is
prefilled alone; decode rows are row-invariant (see `decode.py`); draws are counter-based (see
`sampling.py`); a conversation's turn always continues from its own parked cache, which is never
recomputed unless the host copies exceed `park_memory_mb` (see `parking.py`). Early stopping
changes nothing: a row stops once its stop rule's cut satisfies `cut <= len(text) - rule.lookahead`
on the text decoded so far (trailing U+FFFD of an incomplete UTF-8 sequence excluded), and the
returned text is the full-length text cut there.
"""

from __future__ import annotations

import logging
import resource
import time
from collections import deque
from dataclasses import asdict, dataclass
from typing import Iterator

import torch

from .admission import RequestQueue, Work, check_stop_rule, prompt_ids
from .decode import ROW_TILE, DecodeStep, attention_groups, pack_option
from .generator import Completion, Request
from .kv_cache import BLOCK, SlotKVCache, StagingCache, round_up
from .model import CodeGenForCausalLM
from .parking import ParkedCaches
from .sampling import row_key, sample_tokens
from .slots import Row, SlotInputs, SlotTable

log = logging.getLogger(__name__)

AttentionRuns = list[tuple[int, int, int]]  # (start, end, key length) runs of rows, `decode.attention_groups`


@dataclass
class EngineStats:
    """Work and time since the engine was built (or `reset_stats()`)."""

    prefill_s: float = 0.0  # prompt forwards (fresh prompts and conversation suffixes)
    decode_s: float = 0.0  # decode steps, sampling included
    sample_s: float = 0.0  # of which drawing tokens
    prefill_tokens: int = 0  # prompt tokens run through the model
    shared_tokens: int = 0  # prompt tokens copied from a request's single prefill (prefix sharing)
    reused_tokens: int = 0  # prompt tokens kept from a parked conversation cache
    decode_steps: int = 0
    row_steps: int = 0  # rows computed, summed over decode steps (idle rows of the range included)
    active_row_steps: int = 0  # of which rows that were generating
    attended_keys: int = 0  # longest key length attended over, summed over decode steps
    attended_key_rows: int = 0  # keys read x rows reading them, summed over decode steps
    new_tokens: int = 0  # tokens drawn (eos and tokens past a stop cut included)
    completions: int = 0
    parked_moved: int = 0  # parked conversation caches moved to host memory to free a slot
    parked_dropped: int = 0  # parked caches dropped over park_memory_mb (next turn re-prefilled)
    kv_cache_bytes: int = 0
    peak_memory_bytes: int = 0  # CUDA: max allocated; CPU: the process's peak resident set

    @property
    def tokens_per_s(self) -> float:
        total = self.prefill_s + self.decode_s
        return self.new_tokens / total if total > 0 else 0.0

    @property
    def decode_ms_per_step(self) -> float:
        return 1000.0 * self.decode_s / self.decode_steps if self.decode_steps else 0.0

    def count_step(self, rows: int, active: int, key_length: int, runs: AttentionRuns | None,
                   decode_s: float, sample_s: float) -> None:
        """One decode step over `rows` slots, `active` of them generating."""
        self.decode_s += decode_s
        self.sample_s += sample_s
        self.decode_steps += 1
        self.row_steps += rows
        self.active_row_steps += active
        self.attended_keys += key_length
        self.attended_key_rows += rows * key_length if runs is None else sum((b - a) * T for a, b, T in runs)

    def to_dict(self) -> dict:
        return {**asdict(self), "tokens_per_s": self.tokens_per_s, "decode_ms_per_step": self.decode_ms_per_step}


class Engine:
    """The real `Generator`: continuous batching over a slot KV cache, shared prefixes,
    conversation caches, early stopping and per-sample deterministic sampling.

    Options: `max_batch` rows decoded together (slots); `max_len` preallocated tokens per slot
    (default: grown on demand up to the model's context); `truncate_prompt` keeps the last tokens of
    a prompt too long for the context instead of raising; `ignore_eos` keeps generating through eos
    (benchmarks); `compile` wraps the decode step in `torch.compile` (True, or a mode such as
    "reduce-overhead" for CUDA graphs); `exact` selects the fp32,
    batch-invariant attention over an fp32 KV cache (default: on CPU; SDPA over a cache in the
    model's dtype otherwise); `pack_weights` keeps a oneDNN-prepacked copy of the linear weights
    (default: on CPU in fp32/bf16 when the copy takes under a quarter of the RAM; 2-4x faster
    decode matmuls, twice the weight memory); `park_memory_mb` caps conversation caches moved to host memory.
    Raises ValueError for an option out of range or a tokenizer larger than the model's vocabulary.
    """

    def __init__(self, model: CodeGenForCausalLM, tokenizer, *, max_batch: int = 16, max_len: int | None = None,
                 truncate_prompt: bool = False, ignore_eos: bool = False, compile: bool | str = False,
                 exact: bool | None = None, pack_weights: bool | None = None, park_memory_mb: float = 4096.0):
        if max_batch < 1:
            raise ValueError(f"max_batch must be >= 1, got {max_batch}")
        self.model, self.tokenizer, self.config = model.eval(), tokenizer, model.config
        self.device, self.dtype = model.device, model.dtype
        self.vocab_size, self.eos_id = int(tokenizer.vocab_size), tokenizer.eos_id
        if self.vocab_size > self.config.vocab_size:
            raise ValueError(f"the tokenizer has {self.vocab_size} tokens but the model only "
                             f"{self.config.vocab_size} rows; they do not belong together")
        self.max_batch, self.max_len = max_batch, max_len
        self.slots = round_up(max_batch, ROW_TILE)  # slots past max_batch stay free: padding rows
        self.truncate_prompt, self.ignore_eos, self.compile = truncate_prompt, ignore_eos, compile
        self.exact = exact if exact is not None else self.device.type == "cpu"
        self.kv_dtype = torch.float32 if self.exact else self.dtype  # see decode.py
        self.pack_weights = pack_option(model, pack_weights, compile)
        self.park_memory_bytes = int(park_memory_mb * 2**20)
        self.model_info: dict | None = None  # set by registry.build_generator
        self.cache: SlotKVCache | None = None  # allocated at the first admission, sized to the need
        self._step_fn = DecodeStep(model, None, self.exact, self.pack_weights)  # packs the weights now
        self._decode = self._step_fn
        if compile:  # True: default mode; a string: that mode (e.g. "reduce-overhead": CUDA graphs)
            mode = compile if isinstance(compile, str) else None
            self._decode = torch.compile(self._step_fn.__call__, mode=mode, dynamic=True)
        self.stats = EngineStats()
        self._works = RequestQueue()  # what waits for a slot
        self._table = SlotTable(self.slots, usable=max_batch)  # what each slot holds
        self._inputs = SlotInputs(self.slots, self.device)  # what each slot feeds the decode step and sampler
        self._parked = ParkedCaches(self.park_memory_bytes)  # conversation caches between turns
        self._finished: deque[Completion] = deque()

    @property
    def _owner(self) -> list:
        """Each slot's occupant: None (free), a `slots.Row` or a `parking.Parked` (tests read it)."""
        return self._table.occupants

    # ----------------------------------------------------------------------------- Generator API

    def submit(self, request: Request) -> None:
        """Queue a request (raises ValueError/TypeError naming the request on bad input)."""
        ids = prompt_ids(request, self.tokenizer, self.vocab_size, self.config.n_positions, self.truncate_prompt)
        check_stop_rule(request)
        self._works.push(Work(request, ids, deque(range(request.sample_offset, request.sample_offset + request.n))))

    def completions(self) -> Iterator[Completion]:
        """Run the scheduler until nothing is queued or running, yielding each `Completion` as its
        row finishes; requests submitted meanwhile are served in the same pass."""
        while self._works or self._table.has_rows():
            with torch.inference_mode():  # never held across a yield: the caller's code runs outside
                self._admit()
            yield from self._drain()
            if self._table.has_rows():
                with torch.inference_mode():
                    self._step()
                yield from self._drain()
            elif self._works and not self._finished:
                raise RuntimeError(f"engine stalled with {self._works.waiting()} samples waiting and no slot "
                                   "to give them (internal error; please report)")
        self._update_memory_stats()

    def release(self, conversation: str) -> None:
        """Drop the parked caches of `conversation`; its running rows free their slot when done."""
        for slot in self._parked.release(conversation):
            self._table.free(slot)
        for row in self._table.rows():
            if row.work.request.conversation == conversation:
                row.park = False

    def reset_stats(self) -> None:
        self.stats = EngineStats(kv_cache_bytes=self.cache.nbytes if self.cache else 0)
        if self.device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(self.device)

    # ----------------------------------------------------------------------------- admission

    def _admit(self) -> None:
        """Give waiting samples slots: parked conversations whose next turn is queued continue in
        their own slots (no free slot needed); then samples, in queue order, take slots until none
        is left. Each pass costs what it admits, not what is queued."""
        for parked in self._table.parked():
            work = self._works.next_turn(parked.key)
            if work is not None:
                self._continue(work, parked.key[1], parked.slot)
        for work in self._works:
            self._admit_work(work)
            if not self._table.free_slots() and self._parked.victim(self._works.has_turn_queued) is None:
                break  # no slot left for anyone behind

    def _admit_work(self, work: Work) -> None:
        """Slots for the samples of `work` that may start now; stops at the first without one."""
        fresh: list[Row] = []
        for index in list(work.pending):
            key = work.conversation_key(index)
            if key is not None and (self._table.is_running(key) or self._works.next_turn(key) is not work):
                continue  # its previous turn is still running or still queued
            parked = self._parked.get(key)
            slot = parked.slot if parked is not None and parked.slot is not None else self._take_slot()
            if slot is None:
                break
            if self._parked.get(key) is not None:  # parked in a slot or in host memory: continue it
                self._continue(work, index, slot)
            else:  # new, or its host copy was dropped by the swap-out above: prefilled from scratch
                self._works.take(work, index)
                fresh.append(self._new_row(work, index, slot))
        if fresh:
            self._start_fresh(work, fresh)
        if not work.pending:
            work.staged = work.logits = None

    def _take_slot(self) -> int | None:
        """The lowest free slot, else one the swap policy frees; None when neither exists."""
        free = self._table.free_slots()
        if free:
            return free[0]
        victim = self._parked.victim(self._works.has_turn_queued)
        if victim is None:
            return None
        slot = victim.slot
        self.stats.parked_dropped += self._parked.swap_out(victim, self.cache)
        self.stats.parked_moved += 1
        self._table.free(slot)
        return slot

    def _new_row(self, work: Work, index: int, slot: int) -> Row:
        r = work.request
        row = Row(work, index, slot, row_key(r.params.seed, r.key, index), pos=len(work.ids),
                  park=r.conversation is not None)
        self._table.run(row)
        self._inputs.start(row)
        return row

    def _start_fresh(self, work: Work, rows: list[Row]) -> None:
        """Prefill the prompt once (kept until all samples are in), copy it to each row's slot, draw token 0."""
        self._ensure_capacity(len(work.ids) + work.request.params.max_new_tokens)
        if work.staged is None:
            work.staged = StagingCache(self.config, len(work.ids), self.kv_dtype, self.device)
            work.logits = self._prefill(work.ids, work.staged)
        else:
            self.stats.shared_tokens += len(work.ids)
        self.stats.shared_tokens += (len(rows) - 1) * len(work.ids)
        for row in rows:
            self.cache.load(row.slot, work.staged.k, work.staged.v)
        self._first_tokens(rows, work.logits.expand(len(rows), -1).contiguous())

    def _continue(self, work: Work, index: int, slot: int) -> None:
        """Next turn of a conversation sample in `slot`: keep the common prefix, prefill the rest."""
        self._works.take(work, index)
        parked = self._parked.take((work.request.conversation, index))
        row = self._new_row(work, index, slot)
        self._ensure_capacity(len(work.ids) + work.request.params.max_new_tokens)
        keep = parked.reusable(work.ids)
        self._parked.swap_in(parked, self.cache, slot, keep)
        logits = self._prefill(work.ids[keep:], self.cache.slot_view(slot, keep), keep)
        self.stats.reused_tokens += keep
        self._first_tokens([row], logits)

    def _first_tokens(self, rows: list[Row], logits: torch.Tensor) -> None:
        """Draw each row's first token from its prefill's (len(rows), V) fp32 logits."""
        slots = torch.tensor([r.slot for r in rows], device=self.device)
        tokens = sample_tokens(logits, self.vocab_size, self._inputs.row_params(slots, rows)).tolist()
        for row, token in zip(rows, tokens):
            self._inputs.feed(row, token)
            self._accept(row, token)

    def _prefill(self, ids: list[int], cache, start: int = 0) -> torch.Tensor:
        t0 = time.perf_counter()
        logits = self._step_fn.prefill(ids, start, cache)  # (1, V) fp32
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
        self.stats.prefill_s += time.perf_counter() - t0
        self.stats.prefill_tokens += len(ids)
        return logits

    def _ensure_capacity(self, need: int) -> None:
        """Room for `need` tokens per slot: the cache is allocated at the first admission, sized to the need."""
        if self.cache is None:
            self.cache = SlotKVCache(self.config, self.slots, max(need, self.max_len or 0), self.kv_dtype, self.device)
            self._step_fn.cache = self.cache
            log.info("engine: KV cache of %d slots x %d tokens (%.1f MiB)", self.slots, self.cache.capacity,
                     self.cache.nbytes / 2**20)
        else:
            self.cache.reserve(need, limit=self.config.n_positions)
        self.stats.kv_cache_bytes = self.cache.nbytes

    # ----------------------------------------------------------------------------- decoding

    def _step(self) -> None:
        """One token for every running row: decode the slot range, draw, advance, check each row."""
        rows = self._table.rows()
        lo, hi = self._table.span(rows)
        key_length, runs = self._attention_plan(rows, lo, hi)
        inputs = self._inputs
        t0 = time.perf_counter()
        logits = self._decode(inputs.token[lo:hi], inputs.position[lo:hi], inputs.active[lo:hi], lo, hi,
                              key_length, runs)  # (hi - lo, V) fp32
        t1 = time.perf_counter()
        sampled = sample_tokens(logits, self.vocab_size, inputs.row_params(slice(lo, hi), rows))
        inputs.advance(lo, hi, sampled)
        host = sampled.tolist()  # the one device -> host transfer per step
        t2 = time.perf_counter()
        self.stats.count_step(hi - lo, len(rows), key_length, runs, decode_s=t2 - t0, sample_s=t2 - t1)
        for row in rows:
            row.pos += 1
            self._accept(row, host[row.slot - lo])

    def _attention_plan(self, rows: list[Row], lo: int, hi: int) -> tuple[int, AttentionRuns | None]:
        """The step's key length (the longest row's, rounded up to BLOCK) and, on the exact path,
        attention in runs of rows of similar length (`decode.attention_groups`); idle rows read none."""
        capacity = self.cache.capacity
        key_length = min(round_up(max(r.pos for r in rows) + 1, BLOCK), capacity)
        if not self.exact or self.compile:
            return key_length, None
        keys = [0] * (hi - lo)
        for r in rows:
            keys[r.slot - lo] = min(round_up(r.pos + 1, BLOCK), capacity)
        return key_length, attention_groups(keys)

    # ----------------------------------------------------------------------------- finishing

    def _accept(self, row: Row, token: int) -> None:
        row.tokens.append(token)
        self.stats.new_tokens += 1
        request = row.work.request
        if token == self.eos_id and not self.ignore_eos:
            self._finish(row, "eos")
        elif request.stop is not None and self._stop_fixed(row, request.stop):
            self._finish(row, "stop")
        elif len(row.tokens) >= request.params.max_new_tokens:
            self._finish(row, "length")

    def _stop_fixed(self, row: Row, stop) -> bool:
        """Has the stop rule's cut stopped moving? (Incomplete UTF-8 at the tail is not text yet.)"""
        text = self.tokenizer.decode(row.tokens).rstrip("\ufffd")
        cut = stop(text)
        if cut is not None and cut <= len(text) - stop.lookahead:
            row.text, row.cut = text, cut
            return True
        return False

    def _finish(self, row: Row, reason: str) -> None:
        """Emit the row's completion; its slot becomes free, or parked for the conversation's next turn."""
        self._finished.append(self._completion(row, reason))
        self.stats.completions += 1
        self._inputs.clear(row.slot)
        parked = None
        if row.park:  # the cache holds the prompt and every drawn token but the last
            parked = self._parked.park(row.conversation_key, row.work.ids + row.tokens[:-1], row.slot)
        self._table.finish(row, parked)

    def _completion(self, row: Row, reason: str) -> Completion:
        request = row.work.request
        ids = row.tokens[:-1] if reason == "eos" else list(row.tokens)
        if row.text is not None:
            text, cut = row.text, row.cut
        else:
            text = self.tokenizer.decode(ids)
            cut = request.stop(text) if request.stop is not None else None
        if cut is not None:
            text, reason = text[:cut], "stop"
        return Completion(
            key=request.key, sample_index=row.sample_index, text=text, token_ids=ids, finish_reason=reason,
            n_prompt_tokens=len(row.work.ids), n_new_tokens=len(row.tokens),
            time_s=time.perf_counter() - row.t0, request=request)

    def _drain(self) -> Iterator[Completion]:
        while self._finished:
            yield self._finished.popleft()

    def _update_memory_stats(self) -> None:
        if self.device.type == "cuda":
            self.stats.peak_memory_bytes = torch.cuda.max_memory_allocated(self.device)
        else:
            self.stats.peak_memory_bytes = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024

