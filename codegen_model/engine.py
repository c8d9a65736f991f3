"""The sampling engine: a `Generator` over our CodeGen with a slot KV cache (DESIGN §2, issue #3).

Requests go into a FIFO queue; `completions()` runs the scheduler until nothing is pending:
1. admit: a conversation's queued next turn goes back into the slot its previous turn left
   *parked* (no free slot needed): the full history is re-tokenised, the longest common token
   prefix with the parked tokens is kept, only the rest is prefilled. Then, in queue order, waiting
   samples take free slots (lowest index first). A request's prompt is prefilled once
   (`StagingCache`) and its keys/values copied into each of its samples' slots (prefix sharing);
   the first token is drawn from the prefill's logits.
2. decode: one token for every row of the smallest slot range [lo, hi) holding the running rows,
   aligned to `ROW_TILE` (`decode.DecodeStep`); rows of free or parked slots in the range are
   computed and discarded (their keys go to a scratch column).
3. each new token is checked against eos, the stop rule and the token budget; a finished row
   yields its `Completion` and frees its slot (or parks it), and the next waiting sample is
   admitted before the next decode step (continuous batching).

Determinism (fp32 on CPU, exact): a sample's tokens depend only on (prompt, params, seed, key,
sample index), never on max_batch, request order, the other requests, or how a request's samples
are split. Every piece of a sample's computation is fixed by the sample itself: its prompt is
prefilled alone; decode rows are row-invariant (see `decode.py`); draws are counter-based (see
`sampling.py`); a conversation's turn always continues from its own parked cache, which is never
recomputed: when a new sample needs a slot and none is free, an idle parked slot is *moved* to
host memory (an exact copy) and moved back for the next turn. Only when parked copies exceed
`park_memory_mb` is the oldest dropped (logged, counted in stats); its next turn is then prefilled
from scratch, which agrees to float rounding but is not bit-identical.
Early stopping changes nothing: a row stops once its stop rule's cut satisfies
`cut <= len(text) - rule.lookahead` on the text decoded so far (trailing U+FFFD of an incomplete
UTF-8 sequence excluded), and the returned text is the full-length text cut there.
"""

from __future__ import annotations

import logging
import os
import resource
import time
from collections import deque
from dataclasses import asdict, dataclass, field
from typing import Iterator, Sequence

import torch

from .decode import ROW_TILE, DecodeStep, attention_groups, can_pack
from .generator import Completion, Request
from .kv_cache import BLOCK, SlotKVCache, StagingCache, round_up
from .model import CodeGenForCausalLM
from .sampling import RowParams, row_key, row_params, sample_tokens

log = logging.getLogger(__name__)


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

    def to_dict(self) -> dict:
        return {**asdict(self), "tokens_per_s": self.tokens_per_s, "decode_ms_per_step": self.decode_ms_per_step}


@dataclass
class _Work:
    """A submitted request: its prompt ids and the samples not yet admitted."""

    request: Request
    ids: list[int]
    pending: deque[int]
    staged: StagingCache | None = None
    logits: torch.Tensor | None = None  # (1, V) at the prompt's last token


@dataclass
class _Row:
    """One sample being generated in a slot."""

    work: _Work
    sample_index: int
    slot: int
    key: tuple[int, int]
    pos: int  # cached tokens = index where the next fed token goes
    t0: float
    tokens: list[int] = field(default_factory=list)  # drawn so far (a final eos included)
    text: str | None = None  # set when the stop rule fixed the cut early
    cut: int | None = None
    park: bool = False


@dataclass
class _Parked:
    """A conversation sample's cache after its turn: `ids` are the tokens whose keys are cached."""

    key: tuple[str, int]  # (conversation, sample index)
    ids: list[int]
    slot: int | None  # None when moved to host memory
    saved: tuple[torch.Tensor, torch.Tensor] | None = None
    tick: int = 0

    @property
    def nbytes(self) -> int:
        return 0 if self.saved is None else sum(t.numel() * t.element_size() for t in self.saved)


def _weight_bytes(model: torch.nn.Module) -> int:
    return sum(p.numel() * p.element_size() for p in model.parameters() if p.dim() == 2)


def _ram_bytes() -> int:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return 0


def common_prefix(a: Sequence[int], b: Sequence[int]) -> int:
    n = min(len(a), len(b))
    i = 0
    while i < n and a[i] == b[i]:
        i += 1
    return i


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
    """

    def __init__(self, model: CodeGenForCausalLM, tokenizer, *, max_batch: int = 16, max_len: int | None = None,
                 truncate_prompt: bool = False, ignore_eos: bool = False, compile: bool | str = False,
                 exact: bool | None = None, pack_weights: bool | None = None, park_memory_mb: float = 4096.0):
        if max_batch < 1:
            raise ValueError(f"max_batch must be >= 1, got {max_batch}")
        self.model = model.eval()
        self.tokenizer = tokenizer
        self.config = model.config
        self.device, self.dtype = model.device, model.dtype
        self.vocab_size = int(tokenizer.vocab_size)
        if self.vocab_size > self.config.vocab_size:
            raise ValueError(f"the tokenizer has {self.vocab_size} tokens but the model only "
                             f"{self.config.vocab_size} rows; they do not belong together")
        self.eos_id = tokenizer.eos_id
        self.max_batch = max_batch
        self.slots = round_up(max_batch, ROW_TILE)  # slots past max_batch stay free: padding rows
        self.max_len = max_len
        self.truncate_prompt, self.ignore_eos = truncate_prompt, ignore_eos
        self.exact = exact if exact is not None else self.device.type == "cpu"
        self.kv_dtype = torch.float32 if self.exact else self.dtype  # see decode.py
        if pack_weights is None:  # a second copy of the weights: only when it is small next to the RAM
            pack_weights = can_pack(model) and not compile and _weight_bytes(model) <= _ram_bytes() // 4
        self.pack_weights = bool(pack_weights)
        if self.pack_weights and not can_pack(model):
            raise ValueError(f"pack_weights=True needs a CPU model in float32 or bfloat16 and oneDNN; this one is "
                             f"{self.dtype} on {self.device}: leave pack_weights unset")
        self.park_memory_bytes = int(park_memory_mb * 2**20)
        self.compile = compile
        self.model_info: dict | None = None  # set by registry.build_generator
        self.cache: SlotKVCache | None = None  # allocated at the first admission, sized to the need
        self._step_fn = DecodeStep(model, None, self.exact, self.pack_weights)  # packs the weights now
        self._decode = self._step_fn
        if compile:  # True: default mode; a string: that mode (e.g. "reduce-overhead": CUDA graphs)
            mode = compile if isinstance(compile, str) else None
            self._decode = torch.compile(self._step_fn.__call__, mode=mode, dynamic=True)
        self.stats = EngineStats()

        self._works: deque[_Work] = deque()
        self._owner: list[_Row | _Parked | None] = [None] * self.slots
        self._parked: dict[tuple[str, int], _Parked] = {}
        self._pending_by_key: dict[tuple[str, int], deque[_Work]] = {}  # queued turns per conversation sample
        self._running_convs: dict[tuple[str, int], _Row] = {}
        self._tick = 0
        self._saved_bytes = 0
        self._finished: list[Completion] = []
        dev = self.device
        self._tok = torch.zeros(self.slots, dtype=torch.long, device=dev)  # next token to feed
        self._pos = torch.zeros(self.slots, dtype=torch.long, device=dev)  # its position = cached tokens
        self._draw = torch.zeros(self.slots, dtype=torch.long, device=dev)  # index of the next draw
        self._active = torch.zeros(self.slots, dtype=torch.bool, device=dev)
        self._temp = torch.zeros(self.slots, dtype=torch.float32, device=dev)
        self._top_p = torch.ones(self.slots, dtype=torch.float32, device=dev)
        self._top_k = torch.zeros(self.slots, dtype=torch.long, device=dev)
        self._key_hi = torch.zeros(self.slots, dtype=torch.long, device=dev)
        self._key_lo = torch.zeros(self.slots, dtype=torch.long, device=dev)

    # ----------------------------------------------------------------------------- Generator API

    def submit(self, request: Request) -> None:
        ids = self._prompt_ids(request)
        stop = request.stop
        if stop is not None and not (callable(stop) and isinstance(getattr(stop, "lookahead", None), int)):
            raise TypeError(f"request {request.key!r}: stop must be a StopRule (callable with an int "
                            f"`lookahead`), got {stop!r}")
        work = _Work(request, ids, deque(range(request.sample_offset, request.sample_offset + request.n)))
        if request.conversation is not None:
            for i in work.pending:
                self._pending_by_key.setdefault((request.conversation, i), deque()).append(work)
        self._works.append(work)

    def completions(self) -> Iterator[Completion]:
        while self._works or self._has_rows():
            with torch.inference_mode():  # never held across a yield: the caller's code runs outside
                self._admit()
            yield from self._drain()
            if self._has_rows():
                with torch.inference_mode():
                    self._step()
                yield from self._drain()
            elif self._works and not self._finished:
                waiting = sum(len(w.pending) for w in self._works)
                raise RuntimeError(f"engine stalled with {waiting} samples waiting and no slot to give "
                                   "them (internal error; please report)")
        self._update_memory_stats()

    def release(self, conversation: str) -> None:
        """Drop the parked caches of `conversation`; its running rows free their slot when done."""
        for key in [k for k in self._parked if k[0] == conversation]:
            self._drop_parked(key)
        for key, row in self._running_convs.items():
            if key[0] == conversation:
                row.park = False

    def reset_stats(self) -> None:
        self.stats = EngineStats(kv_cache_bytes=self.cache.nbytes if self.cache else 0)
        if self.device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(self.device)

    # ----------------------------------------------------------------------------- admission

    def _prompt_ids(self, request: Request) -> list[int]:
        prompt = request.prompt
        ids = self.tokenizer.encode(prompt) if isinstance(prompt, str) else [int(i) for i in prompt]
        if not ids:
            raise ValueError(f"request {request.key!r}: the prompt is empty; CodeGen needs at least one token")
        bad = next((i for i in ids if not 0 <= i < self.vocab_size), None)
        if bad is not None:
            raise ValueError(f"request {request.key!r}: token id {bad} is outside the tokenizer's "
                             f"vocabulary of {self.vocab_size}")
        context, budget = self.config.n_positions, request.params.max_new_tokens
        if budget >= context:
            raise ValueError(f"request {request.key!r}: max_new_tokens={budget} leaves no room for the "
                             f"prompt in the model's context of {context} tokens; lower max_new_tokens")
        if len(ids) + budget > context:
            if not self.truncate_prompt:
                raise ValueError(
                    f"request {request.key!r}: prompt of {len(ids)} tokens + max_new_tokens={budget} "
                    f"exceeds the model's context of {context} tokens; shorten the prompt, lower "
                    "max_new_tokens, or build the engine with truncate_prompt=True (keeps the last "
                    f"{context - budget} prompt tokens)")
            log.warning("request %r: prompt of %d tokens truncated on the left to %d (context %d, "
                        "max_new_tokens %d)", request.key, len(ids), context - budget, context, budget)
            ids = ids[len(ids) - (context - budget):]
        return ids

    def _has_rows(self) -> bool:
        return any(isinstance(o, _Row) for o in self._owner)

    def _ensure_capacity(self, need: int) -> None:
        limit = round_up(self.config.n_positions, BLOCK)
        if self.cache is None:
            self.cache = SlotKVCache(self.config, self.slots, max(need, self.max_len or 0), self.kv_dtype, self.device)
            self._step_fn.cache = self.cache
            log.info("engine: KV cache of %d slots x %d tokens (%.1f MiB)", self.slots, self.cache.capacity,
                     self.cache.nbytes / 2**20)
        elif need > self.cache.capacity:
            self.cache.grow(min(max(need, self.cache.capacity * 3 // 2), limit))
            log.info("engine: KV cache grown to %d tokens per slot (%.1f MiB)", self.cache.capacity,
                     self.cache.nbytes / 2**20)
        self.stats.kv_cache_bytes = self.cache.nbytes

    def _free_slots(self) -> list[int]:
        return [s for s in range(self.max_batch) if self._owner[s] is None]

    def _movable(self) -> list[_Parked]:
        """Parked caches in slots whose conversation has no turn queued (they may go to host memory)."""
        return [o for o in self._owner[: self.max_batch]
                if isinstance(o, _Parked) and o.key not in self._pending_by_key]

    def _make_room(self) -> int | None:
        """Free a slot by moving the least recently parked idle conversation cache to host memory."""
        idle = self._movable()
        if not idle:
            return None
        parked = min(idle, key=lambda p: p.tick)
        slot = parked.slot
        parked.saved = self.cache.save(slot, len(parked.ids), "cpu")
        parked.slot = None
        self._owner[slot] = None
        self._saved_bytes += parked.nbytes
        self.stats.parked_moved += 1
        while self._saved_bytes > self.park_memory_bytes:
            oldest = min((k for k, p in self._parked.items() if p.saved is not None),
                         key=lambda k: self._parked[k].tick)
            (log.warning if not self.stats.parked_dropped else log.debug)(
                "engine: parked conversation caches exceed park_memory_mb=%g; dropping %r and the oldest "
                "after it (their next turns are prefilled from scratch: equal to float rounding, not "
                "bit-identical; stats.parked_dropped counts them)", self.park_memory_bytes / 2**20, oldest)
            self._drop_parked(oldest)
            self.stats.parked_dropped += 1
        return slot

    def _drop_parked(self, key: tuple[str, int]) -> None:
        parked = self._parked.pop(key)
        if parked.slot is not None:
            self._owner[parked.slot] = None
        self._saved_bytes -= parked.nbytes

    def _take_slot(self) -> int | None:
        free = self._free_slots()
        return free[0] if free else self._make_room()

    def _admit(self) -> None:
        """Give waiting samples slots. First every parked conversation whose next turn is queued
        continues in its own slot (no free slot needed); then, in queue order, samples take free
        slots until none is left. Each pass costs what it admits, not what is queued."""
        for slot, owner in enumerate(self._owner):
            if isinstance(owner, _Parked) and owner.key in self._pending_by_key:
                work = self._pending_by_key[owner.key][0]
                self._take_pending(work, owner.key[1])
                self._owner[slot] = work  # reserved for the row _continue makes
                del self._parked[owner.key]
                self._continue(work, owner.key[1], slot, owner)
        for work in list(self._works):
            conv = work.request.conversation
            fresh: list[tuple[int, int]] = []
            for index in list(work.pending):
                key = (conv, index) if conv is not None else None
                if key is not None and (key in self._running_convs or self._pending_by_key[key][0] is not work):
                    continue  # its previous turn is still running or still queued
                parked = self._parked.get(key) if key is not None else None
                slot = parked.slot if parked is not None and parked.slot is not None else self._take_slot()
                if slot is None:
                    break
                self._owner[slot] = work  # reserved for the row made below
                self._take_pending(work, index)
                if parked is not None:  # parked since the first pass, or in host memory: continue it
                    del self._parked[key]
                    self._saved_bytes -= parked.nbytes
                    self._continue(work, index, slot, parked)
                else:
                    fresh.append((index, slot))
            if fresh:
                self._start_fresh(work, fresh)
            if not work.pending:
                work.staged = work.logits = None
            if not self._free_slots() and not self._movable():
                break  # no slot left for anyone behind
        while self._works and not self._works[0].pending:
            self._works.popleft()

    def _take_pending(self, work: _Work, index: int) -> None:
        work.pending.remove(index)
        conv = work.request.conversation
        if conv is not None:
            queue = self._pending_by_key[(conv, index)]
            queue.popleft()
            if not queue:
                del self._pending_by_key[(conv, index)]
        if not work.pending and work in self._works:
            self._works.remove(work)

    def _new_row(self, work: _Work, index: int, slot: int) -> _Row:
        r = work.request
        row = _Row(work, index, slot, row_key(r.params.seed, r.key, index), pos=len(work.ids), t0=time.perf_counter(),
                   park=r.conversation is not None)
        self._owner[slot] = row
        if r.conversation is not None:
            self._running_convs[(r.conversation, index)] = row
        p = r.params
        self._temp[slot] = p.temperature
        self._top_p[slot] = p.top_p
        self._top_k[slot] = p.top_k
        self._key_hi[slot], self._key_lo[slot] = row.key
        return row

    def _prefill(self, ids: list[int], cache, start: int = 0) -> torch.Tensor:
        t0 = time.perf_counter()
        logits = self._step_fn.prefill(ids, start, cache)  # (1, V) fp32
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
        self.stats.prefill_s += time.perf_counter() - t0
        self.stats.prefill_tokens += len(ids)
        return logits

    def _start_fresh(self, work: _Work, admitted: list[tuple[int, int]]) -> None:
        """Prefill the prompt once (kept until all samples are in), copy it to each slot, draw token 0."""
        budget = work.request.params.max_new_tokens
        self._ensure_capacity(len(work.ids) + budget)
        if work.staged is None:
            work.staged = StagingCache(self.config, len(work.ids), self.kv_dtype, self.device)
            work.logits = self._prefill(work.ids, work.staged)
        else:
            self.stats.shared_tokens += len(work.ids)
        self.stats.shared_tokens += (len(admitted) - 1) * len(work.ids)
        rows = []
        for index, slot in admitted:
            self.cache.load(slot, work.staged.k, work.staged.v)
            rows.append(self._new_row(work, index, slot))
        self._first_tokens(rows, work.logits.expand(len(rows), -1).contiguous())

    def _continue(self, work: _Work, index: int, slot: int, parked: _Parked) -> None:
        """Next turn of a conversation sample: keep the common prefix, prefill the rest."""
        ids = work.ids
        self._ensure_capacity(len(ids) + work.request.params.max_new_tokens)
        keep = min(common_prefix(parked.ids, ids), len(ids) - 1)  # prefill >= 1 token for the logits
        if parked.saved is not None:
            k, v = parked.saved
            self.cache.load(slot, k[:, :, :keep].to(self.device), v[:, :, :keep].to(self.device))
        logits = self._prefill(ids[keep:], self.cache.slot_view(slot, keep), keep)
        self.stats.reused_tokens += keep
        self._first_tokens([self._new_row(work, index, slot)], logits)

    def _first_tokens(self, rows: list[_Row], logits: torch.Tensor) -> None:
        params = [r.work.request.params for r in rows]
        rp = row_params([p.temperature for p in params], [p.top_p for p in params], [p.top_k for p in params],
                        [r.key for r in rows], [0] * len(rows), self.device)
        tokens = sample_tokens(logits, self.vocab_size, rp).tolist()
        for row, token in zip(rows, tokens):
            slot = row.slot
            self._tok[slot], self._pos[slot], self._draw[slot] = token, row.pos, 1
            self._active[slot] = True
            self._accept(row, token)

    # ----------------------------------------------------------------------------- decoding

    def _step(self) -> None:
        rows = [o for o in self._owner if isinstance(o, _Row)]
        lo = min(r.slot for r in rows) // ROW_TILE * ROW_TILE
        hi = round_up(max(r.slot for r in rows) + 1, ROW_TILE)
        key_length = min(round_up(max(r.pos for r in rows) + 1, BLOCK), self.cache.capacity)
        groups = None
        if self.exact and not self.compile:  # attention only for generating rows, in runs of similar length
            keys = [0] * (hi - lo)
            for r in rows:
                keys[r.slot - lo] = min(round_up(r.pos + 1, BLOCK), self.cache.capacity)
            groups = attention_groups(keys)
        t0 = time.perf_counter()
        tokens, positions, owned = self._tok[lo:hi], self._pos[lo:hi], self._active[lo:hi]
        logits = self._decode(tokens, positions, owned, lo, hi, key_length, groups)
        t1 = time.perf_counter()
        sampled = sample_tokens(logits, self.vocab_size, self._row_params(rows, lo, hi))
        owned_long = owned.long()
        self._tok[lo:hi] = torch.where(owned, sampled, tokens)
        self._pos[lo:hi] += owned_long
        self._draw[lo:hi] += owned_long
        host = sampled.tolist()  # the one device -> host transfer per step
        t2 = time.perf_counter()
        st = self.stats
        st.decode_s += t2 - t0
        st.sample_s += t2 - t1
        st.decode_steps += 1
        st.row_steps += hi - lo
        st.active_row_steps += len(rows)
        st.attended_keys += key_length
        st.attended_key_rows += (hi - lo) * key_length if groups is None else sum((b - a) * T for a, b, T in groups)
        for row in rows:
            row.pos += 1
            self._accept(row, host[row.slot - lo])

    def _row_params(self, rows: list[_Row], lo: int, hi: int) -> RowParams:
        ps = [r.work.request.params for r in rows]
        sampled = [p for p in ps if p.temperature > 0]
        with_k = [p for p in sampled if p.top_k > 0]
        s = slice(lo, hi)
        return RowParams(self._temp[s], self._top_p[s], self._top_k[s], self._key_hi[s], self._key_lo[s],
                         self._draw[s], any_sampled=bool(sampled),
                         any_top_p=any(p.top_k == 0 and p.top_p < 1.0 for p in sampled),
                         any_top_k=bool(with_k), all_top_k=bool(sampled) and len(with_k) == len(sampled),
                         max_top_k=max((p.top_k for p in with_k), default=0))

    # ----------------------------------------------------------------------------- finishing

    def _accept(self, row: _Row, token: int) -> None:
        row.tokens.append(token)
        self.stats.new_tokens += 1
        request = row.work.request
        if token == self.eos_id and not self.ignore_eos:
            self._finish(row, "eos")
        elif request.stop is not None and self._stop_fixed(row, request.stop):
            self._finish(row, "stop")
        elif len(row.tokens) >= request.params.max_new_tokens:
            self._finish(row, "length")

    def _stop_fixed(self, row: _Row, stop) -> bool:
        """Has the stop rule's cut stopped moving? (Incomplete UTF-8 at the tail is not text yet.)"""
        text = self.tokenizer.decode(row.tokens).rstrip("\ufffd")
        cut = stop(text)
        if cut is not None and cut <= len(text) - stop.lookahead:
            row.text, row.cut = text, cut
            return True
        return False

    def _finish(self, row: _Row, reason: str) -> None:
        request = row.work.request
        ids = row.tokens[:-1] if reason == "eos" else list(row.tokens)
        if row.text is not None:
            text, cut = row.text, row.cut
        else:
            text = self.tokenizer.decode(ids)
            cut = request.stop(text) if request.stop is not None else None
        if cut is not None:
            text, reason = text[:cut], "stop"
        self._finished.append(Completion(
            key=request.key, sample_index=row.sample_index, text=text, token_ids=ids, finish_reason=reason,
            n_prompt_tokens=len(row.work.ids), n_new_tokens=len(row.tokens),
            time_s=time.perf_counter() - row.t0, request=request))
        self.stats.completions += 1
        slot = row.slot
        self._active[slot] = False
        self._temp[slot] = 0.0  # idle rows decode greedily: the cheapest draw
        self._key_hi[slot] = self._key_lo[slot] = 0
        if request.conversation is not None:
            key = (request.conversation, row.sample_index)
            del self._running_convs[key]
            if row.park:  # the cache holds the prompt and every drawn token but the last
                self._tick += 1
                self._parked[key] = parked = _Parked(key, row.work.ids + row.tokens[:-1], slot, tick=self._tick)
                self._owner[slot] = parked
                return
        self._owner[slot] = None

    def _drain(self) -> Iterator[Completion]:
        while self._finished:
            yield self._finished.pop(0)

    def _update_memory_stats(self) -> None:
        if self.device.type == "cuda":
            self.stats.peak_memory_bytes = torch.cuda.max_memory_allocated(self.device)
        else:
            self.stats.peak_memory_bytes = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
