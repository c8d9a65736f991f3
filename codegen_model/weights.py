"""Load CodeGen checkpoints in the Hugging Face layout into our model (docs/design.md §2, "Weights").

A checkpoint folder holds `config.json` and the weights as `model.safetensors` or
`pytorch_model.bin` (the released CodeGen checkpoints: fp16, written with `torch.save`), each
possibly sharded with a `*.index.json`. Loading:

1. the config is read and validated; the device is checked to run the requested dtype;
2. the model (of the class the caller passes: this module never imports model.py, which uses it
   for `from_pretrained` / `save_pretrained`; docs/design.md §1) is built on the meta device
   (no memory, no random init);
3. every key and shape of the checkpoint is checked against the model before any tensor is read;
   the legacy per-layer buffers `attn.causal_mask` / `attn.masked_bias` are skipped, nothing else;
4. tensors are read one at a time, moved to the device, cast, and assigned
   (`load_state_dict(assign=True)`): the only full copy is the model's own. Safetensors are read
   with `readinto` (nothing mapped: peak RSS = the model + one tensor); a `.bin` is memory-mapped,
   so its pages count towards RSS while loading (file-backed, reclaimable by the kernel).
   The loaded weights never share memory with the files.

Every user-caused failure is one `CheckpointError` / `DeviceError` line naming the file and the fix.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import time
from collections import OrderedDict
from pathlib import Path

import torch
from torch import nn

from .config import CodeGenConfig
from .hub import CONFIG_FILE, WEIGHT_FORMATS, CheckpointError

log = logging.getLogger(__name__)

__all__ = ["CheckpointError", "DeviceError", "load_from_folder", "weight_files",
           "weights_hash", "save_model", "resolve_dtype", "check_device"]

LEGACY_BUFFER = re.compile(r"^transformer\.h\.\d+\.attn\.(causal_mask|masked_bias)$")
DTYPES = {"float32": torch.float32, "fp32": torch.float32, "float": torch.float32,
          "float16": torch.float16, "fp16": torch.float16, "half": torch.float16,
          "bfloat16": torch.bfloat16, "bf16": torch.bfloat16}


class DeviceError(ValueError):
    """A device or dtype this machine cannot run; the message says what to use instead."""


# ---------------------------------------------------------------------------------------------
# device and dtype

def resolve_dtype(dtype: str | torch.dtype, device: str | torch.device = "cpu") -> torch.dtype:
    """A supported torch dtype; "auto" = float16 on CUDA (the released weights' dtype), else float32."""
    if dtype == "auto":
        return torch.float16 if str(device).startswith("cuda") else torch.float32
    if isinstance(dtype, torch.dtype):
        if dtype in DTYPES.values():
            return dtype
    elif isinstance(dtype, str) and dtype.removeprefix("torch.").lower() in DTYPES:
        return DTYPES[dtype.removeprefix("torch.").lower()]
    raise DeviceError(f"dtype {dtype!r} is not supported; use float32, float16 or bfloat16")


def check_device(device: str | torch.device, dtype: torch.dtype) -> torch.device:
    """The torch.device for `device`, after checking it exists and runs `dtype` kernels."""
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as e:
        raise DeviceError(f"device {device!r} is not a torch device ({e}); use cpu, cuda or cuda:N") from None
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise DeviceError(f"device {device!r} needs CUDA, but torch {torch.__version__} sees no "
                              "CUDA GPU; use device=cpu (or auto)")
        count = torch.cuda.device_count()
        if dev.index is not None and dev.index >= count:
            raise DeviceError(f"device {device!r} does not exist: this machine has {count} CUDA "
                              f"device(s), cuda:0..cuda:{count - 1}")
        if dtype == torch.bfloat16 and not torch.cuda.is_bf16_supported():
            name = torch.cuda.get_device_name(dev)
            raise DeviceError(f"{name} ({device}) cannot run bfloat16; use dtype=float16")
    elif dev.type == "mps":
        if not torch.backends.mps.is_available():
            raise DeviceError(f"device {device!r} is not available on this machine; use device=cpu")
    elif dev.type != "cpu":
        raise DeviceError(f"device {device!r} is not supported; use cpu, cuda or cuda:N")
    try:  # the kernels one block needs, in this dtype on this device
        x = torch.ones(2, 8, dtype=dtype, device=dev)
        y = torch.nn.functional.layer_norm(x @ x.T, (2,))
        torch.nn.functional.scaled_dot_product_attention(y[None, None], y[None, None], y[None, None])
    except Exception as e:
        raise DeviceError(f"device {device!r} cannot run {str(dtype).removeprefix('torch.')} "
                          f"({type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}); "
                          "use dtype=float32") from None
    return dev


# ---------------------------------------------------------------------------------------------
# reading checkpoint files

def _corrupt(path: Path, e: Exception) -> CheckpointError:
    first = str(e).strip().splitlines()[0] if str(e).strip() else ""
    if isinstance(e, PermissionError):
        return CheckpointError(f"{path}: cannot read the weights ({first}); make the file readable")
    return CheckpointError(f"{path}: cannot read the weights ({type(e).__name__}: {first}); the file "
                           "is truncated or corrupt: delete it and download it again")


ST_DTYPES = {"F64": torch.float64, "F32": torch.float32, "F16": torch.float16, "BF16": torch.bfloat16,
             "I64": torch.int64, "I32": torch.int32, "I16": torch.int16, "I8": torch.int8,
             "U8": torch.uint8, "BOOL": torch.bool}
MAX_HEADER_BYTES = 100 << 20


class _SafetensorsShard:
    """A .safetensors file: the header parsed up front; each tensor read with `readinto` into its
    own fresh memory. Nothing stays mapped, so the peak RSS is the model plus one tensor, and a file
    rewritten later cannot change a loaded model."""

    def __init__(self, path: Path):
        self.path = path
        size = path.stat().st_size
        with open(path, "rb") as f:
            head = f.read(8)
            if len(head) < 8:
                raise ValueError(f"{size} bytes, shorter than the 8-byte header length")
            n = int.from_bytes(head, "little")
            if n > min(size - 8, MAX_HEADER_BYTES):
                raise ValueError(f"header length {n} does not fit the file's {size} bytes")
            header = json.loads(f.read(n))
        if not isinstance(header, dict):
            raise ValueError("the header is not a JSON object")
        header.pop("__metadata__", None)
        self._start = 8 + n
        self._meta: dict[str, tuple[str, tuple[int, ...], int, int]] = {}
        for key, info in header.items():
            dtype, shape, (begin, end) = info["dtype"], tuple(info["shape"]), info["data_offsets"]
            numel = 1
            for d in shape:
                numel *= d
            itemsize = ST_DTYPES[dtype].itemsize if dtype in ST_DTYPES else None
            if itemsize is not None and end - begin != numel * itemsize or not 0 <= begin <= end:
                raise ValueError(f"tensor {key}: offsets {begin}..{end} do not hold {dtype} {list(shape)}")
            if self._start + end > size:
                raise ValueError(f"tensor {key} ends at byte {self._start + end} but the file has {size}")
            self._meta[key] = (dtype, shape, begin, end)
        self._file = None

    def keys(self) -> list[str]:
        return list(self._meta)

    def shape(self, key: str) -> tuple[int, ...]:
        return self._meta[key][1]

    def is_float(self, key: str) -> bool:
        return self._meta[key][0] in ("F16", "BF16", "F32", "F64")

    def tensor(self, key: str) -> torch.Tensor:
        dtype, shape, begin, end = self._meta[key]
        out = torch.empty(shape, dtype=ST_DTYPES[dtype])
        if self._file is None:
            self._file = open(self.path, "rb")
        self._file.seek(self._start + begin)
        got = self._file.readinto(out.reshape(-1).view(torch.uint8).numpy()) if end > begin else 0
        if got != end - begin:
            raise ValueError(f"tensor {key}: read {got} of {end - begin} bytes")
        return out

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None


class _TorchShard:
    """A pytorch_model*.bin, memory-mapped (`torch.load(mmap=True, weights_only=True)`)."""

    def __init__(self, path: Path):
        self.path = path
        sd = torch.load(path, map_location="cpu", mmap=True, weights_only=True)
        if isinstance(sd, dict) and isinstance(sd.get("state_dict"), dict):
            sd = sd["state_dict"]
        if not isinstance(sd, dict) or not all(isinstance(v, torch.Tensor) for v in sd.values()):
            raise CheckpointError(f"{path}: expected a state dict of tensors, got "
                                  f"{type(sd).__name__}; this is not a model checkpoint")
        self._sd = sd

    def keys(self) -> list[str]:
        return list(self._sd)

    def shape(self, key: str) -> tuple[int, ...]:
        return tuple(self._sd[key].shape)

    def is_float(self, key: str) -> bool:
        return self._sd[key].is_floating_point()

    def tensor(self, key: str) -> torch.Tensor:
        return self._sd[key]

    def close(self) -> None:
        self._sd = {}


def _open_shard(path: Path):
    if not path.is_file():
        raise CheckpointError(f"{path}: missing weights file; download the checkpoint again")
    try:
        return _SafetensorsShard(path) if path.suffix == ".safetensors" else _TorchShard(path)
    except CheckpointError:
        raise
    except Exception as e:
        raise _corrupt(path, e) from None


def _to_device(shard, key: str, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    """One checkpoint tensor on `device` in `dtype`, in memory of its own (never the file's)."""
    try:
        src = shard.tensor(key)
        out = src.to(device=device).to(dtype)
        if out.data_ptr() == src.data_ptr() and isinstance(shard, _TorchShard):
            out = out.clone()  # still the memory-mapped file: make it private
        return out.contiguous()
    except Exception as e:
        raise _corrupt(shard.path, e) from None


def weight_files(folder: Path) -> list[Path]:
    """The weights files of a checkpoint folder, safetensors preferred, shards via their index."""
    return _weight_layout(folder)[1]


def _weight_layout(folder: Path) -> tuple[Path | None, list[Path]]:
    """(the index file or None, the weights files) of the preferred format present in `folder`."""
    for index_name, single_name, _ in WEIGHT_FORMATS:
        index = folder / index_name
        if index.is_file():
            try:
                weight_map = json.loads(index.read_text())["weight_map"]
                names = sorted(set(weight_map.values()))
            except (OSError, ValueError, KeyError, TypeError, AttributeError) as e:
                raise CheckpointError(f"{index}: not a valid index ({type(e).__name__}: {e}); "
                                      "download the checkpoint again") from None
            missing = [n for n in names if not (folder / n).is_file()]
            if missing:
                raise CheckpointError(f"{folder / missing[0]}: missing weights shard ({len(missing)} of "
                                      f"{len(names)} listed in {index_name} are missing); "
                                      "download the checkpoint again")
            return index, [folder / n for n in names]
        if (folder / single_name).is_file():
            return None, [folder / single_name]
    present = sorted(p.name for p in folder.iterdir()) if folder.is_dir() else []
    raise CheckpointError(
        f"{folder}: no weights (model.safetensors, pytorch_model.bin, or a sharded *.index.json); "
        f"the folder holds {present or 'nothing'}: download the checkpoint again")


def _layers(keys) -> int:
    found = {int(m.group(1)) for k in keys if (m := re.match(r"^transformer\.h\.(\d+)\.", k))}
    return max(found) + 1 if found else 0


def _check_keys(source: str, config: CodeGenConfig, expected: dict[str, tuple], found: dict[str, tuple],
                not_float: list[str]) -> None:
    missing = sorted(set(expected) - set(found))
    unexpected = sorted(set(found) - set(expected))
    misshaped = [f"{k}: file {found[k]}, model {expected[k]}" for k in sorted(set(found) & set(expected))
                 if tuple(found[k]) != tuple(expected[k])]
    if not (missing or unexpected or misshaped or not_float):
        return
    parts = []
    for label, items in (("missing", missing), ("unexpected", unexpected), ("mis-shaped", misshaped),
                         ("non-float", not_float)):
        if items:
            more = f", ... ({len(items) - 3} more)" if len(items) > 3 else ""
            parts.append(f"{len(items)} {label} key(s) ({', '.join(items[:3])}{more})")
    n_file = _layers(found)
    layers = (f"; the weights have {n_file} layers, config.json says n_layer={config.n_layer}"
              if n_file and n_file != config.n_layer else "")
    if missing and not (unexpected or misshaped or layers) and len(missing) < len(expected):
        hint = "the weights are incomplete: download the checkpoint again"
    else:
        hint = "use the config.json that came with these weights"
    raise CheckpointError(f"{source}: the weights do not match config.json (n_layer={config.n_layer}, "
                          f"n_embd={config.n_embd}, vocab_size={config.vocab_size}): "
                          f"{'; '.join(parts)}{layers}; {hint}")


def load_from_folder(folder: str | os.PathLike, model_class: type[nn.Module],
                     dtype: str | torch.dtype = torch.float32, device: str | torch.device = "cpu",
                     source: str | None = None) -> nn.Module:
    """`model_class` (CodeGenForCausalLM or CodeGenModel) with the weights of one local checkpoint
    folder (see the module docstring), frozen, in eval mode.

    The bare `CodeGenModel` (no `lm_head`) loads from a full checkpoint (lm_head.* is skipped) or
    from a bare one (keys without the "transformer." prefix, as transformers saves CodeGenModel).
    Buffers that checkpoints do not carry are built by the model's `materialize_buffers(device)`.
    """
    t0 = time.perf_counter()
    folder = Path(folder)
    source = source or str(folder)
    if not folder.is_dir():
        raise CheckpointError(f"checkpoint folder {folder} does not exist")
    if not (folder / CONFIG_FILE).is_file():
        raise CheckpointError(f"{folder / CONFIG_FILE}: missing; a checkpoint folder needs its config.json")
    config = CodeGenConfig.from_json(folder / CONFIG_FILE)
    dtype = resolve_dtype(dtype, device)
    dev = check_device(device, dtype)

    with torch.device("meta"):
        model = model_class(config)
    bare = not hasattr(model, "lm_head")  # CodeGenModel: its keys lack the "transformer." prefix
    prefix = "transformer." if bare else ""
    expected = {prefix + k: tuple(v.shape) for k, v in model.state_dict().items()}
    shards = [_open_shard(p) for p in weight_files(folder)]
    found: dict[str, tuple] = {}
    where: dict = {}
    renamed: dict[str, str] = {}  # our key -> the key in the file
    not_float = []
    for shard in shards:
        for key in shard.keys():
            if LEGACY_BUFFER.match(key):
                continue  # the released checkpoints still carry these; the model recomputes them
            if bare and key.startswith("lm_head."):
                continue  # the bare model has no head
            stored = key
            if not key.startswith(("transformer.", "lm_head.")):
                key = "transformer." + key  # a bare checkpoint (transformers' CodeGenModel layout)
            renamed[key] = stored
            if key in where:
                raise CheckpointError(f"{shard.path}: key {key} also appears in {where[key].path}; "
                                      "the shards overlap: download the checkpoint again")
            found[key], where[key] = shard.shape(stored), shard
            if key in expected and not shard.is_float(stored):
                not_float.append(key)
    _check_keys(source, config, expected, found, not_float)

    state = OrderedDict()
    try:
        for key in expected:  # one tensor at a time: file -> device -> dtype
            state[key[len(prefix):]] = _to_device(where[key], renamed[key], dev, dtype)
    finally:
        for shard in shards:
            shard.close()
    del shards, where
    model.load_state_dict(state, assign=True, strict=True)
    del state
    model.materialize_buffers(dev)
    meta = [n for n, t in [*model.named_parameters(), *model.named_buffers()] if t.is_meta]
    assert not meta, f"tensors left on the meta device after loading: {meta[:3]}; teach materialize_buffers"
    model.eval().requires_grad_(False)
    log.info("loaded %s (%s, %s) in %.1f s", source, str(dtype).removeprefix("torch."), dev,
             time.perf_counter() - t0)
    return model


# ---------------------------------------------------------------------------------------------
# identity and saving

_HASHES: dict[tuple, str] = {}
_BLOB = re.compile(r"^[0-9a-f]{64}$")


def _file_sha256(path: Path) -> str:
    real = path.resolve()
    # In the HF cache an LFS file is a symlink to blobs/<sha256 of its content>: no need to read it.
    if real != path.absolute() and real.parent.name == "blobs" and _BLOB.match(real.name):
        return real.name
    stat = real.stat()
    memo = (str(real), stat.st_size, stat.st_mtime_ns)
    if memo not in _HASHES:
        h = hashlib.sha256()
        with open(real, "rb") as f:
            while chunk := f.read(1 << 23):
                h.update(chunk)
        _HASHES[memo] = h.hexdigest()
    return _HASHES[memo]


def weights_hash(folder: str | os.PathLike) -> str:
    """sha256 over (name, content sha256) of config.json and the weights files: the manifest's id."""
    folder = Path(folder)
    index, files = _weight_layout(folder)
    files = [folder / CONFIG_FILE, *files, *([index] if index else [])]
    lines = sorted(f"{p.name}\t{_file_sha256(p)}\n" for p in files)
    return "sha256:" + hashlib.sha256("".join(lines).encode()).hexdigest()


def save_model(model: nn.Module, folder: str | os.PathLike,
               max_shard_bytes: int | None = None) -> Path:
    """Write config.json and model.safetensors (or shards + index) in the Hugging Face layout.

    A bare `CodeGenModel` is written as transformers writes one: keys without the "transformer."
    prefix, `architectures` ["CodeGenModel"]."""
    from safetensors.torch import save_file

    folder = Path(folder)
    if folder.is_file():
        raise CheckpointError(f"{folder} is a file; saving a checkpoint needs a folder")
    folder.mkdir(parents=True, exist_ok=True)
    config = {**model.config.to_dict(), "architectures": [type(model).__name__]}
    (folder / CONFIG_FILE).write_text(json.dumps(config, indent=2) + "\n")
    state = {k: v.detach().to("cpu").contiguous() for k, v in model.state_dict().items()}
    if max_shard_bytes is None:
        save_file(state, str(folder / "model.safetensors"), metadata={"format": "pt"})
        return folder
    shards: list[dict] = [{}]
    size = 0
    for key, t in state.items():
        nbytes = t.numel() * t.element_size()
        if shards[-1] and size + nbytes > max_shard_bytes:
            shards.append({})
            size = 0
        shards[-1][key] = t
        size += nbytes
    weight_map = {}
    for i, shard in enumerate(shards, 1):
        name = f"model-{i:05d}-of-{len(shards):05d}.safetensors"
        save_file(shard, str(folder / name), metadata={"format": "pt"})
        weight_map.update({k: name for k in shard})
    total = sum(t.numel() * t.element_size() for t in state.values())
    (folder / "model.safetensors.index.json").write_text(
        json.dumps({"metadata": {"total_size": total}, "weight_map": weight_map}, indent=2) + "\n")
    return folder
