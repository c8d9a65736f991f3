"""The one entry of both Hydra apps (`python -m humaneval`, `python -m mtpb`): docs/design.md §6.

    main("humaneval", RunConfig, run, __doc__)   # in humaneval/__main__.py

What it adds around `hydra.main`:
- `list` prints the models, experiments and benchmarks, one line each; `-h`/`--help` prints the
  usage, the config groups and every key with its default and allowed range (no model needed).
- The command line is composed and checked (Hydra structured configs, then each field's range)
  BEFORE Hydra runs the job, because Hydra creates the job's output directory (inside the run
  directory) before the task function runs: a bad value leaves nothing behind. A sweep (`-m`) is
  checked per job, inside its own sweep directory.
- Every user error (a config value, a dataset line, a checkpoint, a run directory, no sandbox) is
  one line on stderr, `error: ...`, and exit status 2; `HYDRA_FULL_ERROR=1` shows the traceback.
- `threads=auto|N` sets torch's intra-op threads (`torch.set_num_threads`) before the run.
- Old override keys (the schema's `ALIASES` table, results/aliases.py) are rewritten to today's
  before anything else, with one warning line each on stderr.
"""

from __future__ import annotations

import dataclasses
import difflib
import json
import logging
import os
import re
import shutil
import sys
import typing
from pathlib import Path
from typing import Any, Callable, Mapping

from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import ConfigKeyError, MissingMandatoryValue, OmegaConfBaseException, ValidationError

from results.aliases import rewrite
from results.config import CONF_DIR, allowed_range, schema_keys

log = logging.getLogger(__name__)

# Flags of Hydra after which the command line is not a plain list of overrides to pre-check.
_UNCHECKED_FLAGS = ("-m", "--multirun", "-cn", "--config-name", "-cp", "--config-path", "-cd", "--config-dir",
                    "--cfg", "-c", "--info", "-i", "--hydra-help", "--resolve", "-p", "--package",
                    "--shell-completion", "-sc", "--run", "-r", "--experimental-rerun")


def user_errors() -> tuple[type[BaseException], ...]:
    """Exceptions a user causes; their messages name the problem and the fix."""
    from sandbox import SandboxUnavailable

    return (ValueError, FileNotFoundError, SandboxUnavailable)


def _drop_empty_output_dir() -> None:
    """After a user error inside a single run's job: remove the folder Hydra made for it
    (`RUN_DIR/hydra/<time>`: its `.hydra` files and log), then `RUN_DIR/hydra`, the run directory and
    the folders above it below the working directory, each only while empty. So a refused command
    leaves no run directory behind, and anything a run wrote (records, metrics) is kept."""
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    try:
        hydra_cfg = HydraConfig.get()
        out, cwd = Path(hydra_cfg.runtime.output_dir).resolve(), Path(hydra_cfg.runtime.cwd).resolve()
        single = hydra_cfg.mode == RunMode.RUN
    except (ValueError, AttributeError):
        return
    if not single or out.parent.name != "hydra":
        return  # a sweep's job folder, or a layout this function does not know: leave it
    logging.shutdown()  # Hydra's file handler holds the job log open
    shutil.rmtree(out, ignore_errors=True)
    run_dir = out.parent.parent
    above = [p for p in run_dir.parents if cwd in p.parents]  # strictly below the working directory
    for folder in (out.parent, run_dir, *above):
        try:
            folder.rmdir()  # only when empty
        except OSError:
            break


def fail(message: str) -> typing.NoReturn:
    """The apps' user-error convention: one line on stderr, exit status 2."""
    print(f"error: {message}", file=sys.stderr)
    sys.exit(2)


def convert(cfg: DictConfig | Mapping, schema: type) -> Any:
    """A composed config (or a plain mapping of its shape) as an instance of the dataclass `schema`,
    through `OmegaConf.to_object`; ValueError with one line (`config_error`) when it does not fit."""
    data = cfg if isinstance(cfg, DictConfig) else OmegaConf.create(dict(cfg))
    data = OmegaConf.masked_copy(data, [k for k in data if k not in ("hydra", "experiment")])
    unknown = _unknown_key(data, schema)
    if unknown:  # forced in with `+key=...` (Hydra lets `+` add a key a structured config lacks)
        known = schema_keys(schema, unknown)
        close = difflib.get_close_matches(unknown.rsplit(".", 1)[-1], known, n=1)
        parent = unknown.rsplit(".", 1)[0] + "." if "." in unknown else ""
        hint = f"did you mean {parent}{close[0]}? " if close else ""
        raise ValueError(f"unknown key {unknown}: {hint}(the keys here: {', '.join(parent + k for k in known)})")
    try:
        merged = OmegaConf.merge(OmegaConf.structured(schema), data)
        missing = sorted(OmegaConf.missing_keys(merged))  # to_object would put a default in their place
        if missing:
            key = missing[0]
            raise ValueError(f"{key} has no value: set {key}=... ({allowed_range(schema, key) or 'see --help'})")
        return OmegaConf.to_object(merged)
    except OmegaConfBaseException as e:
        raise ValueError(config_error(e, schema)) from None


def _unknown_key(node: Any, schema: type, prefix: str = "") -> str | None:
    """The first dotted key of `node` that the dataclass `schema` does not have (None if all known)."""
    hints = typing.get_type_hints(schema)
    names = {f.name for f in dataclasses.fields(schema)}
    for key in node:
        if key not in names:
            return f"{prefix}{key}"
        sub = hints.get(key)
        if dataclasses.is_dataclass(sub) and OmegaConf.is_dict(node[key]):
            found = _unknown_key(node[key], sub, f"{prefix}{key}.")
            if found:
                return found
    return None


def config_error(e: BaseException, schema: type) -> str:
    """One line for a config error of Hydra or OmegaConf: the key, what is wrong, what is allowed."""
    chain = [e]
    while chain[-1].__cause__ is not None or (chain[-1].__context__ is not None and len(chain) < 5):
        chain.append(chain[-1].__cause__ or chain[-1].__context__)
    for err in chain:
        if isinstance(err, ValueError) and not isinstance(err, OmegaConfBaseException) and "is not allowed" in str(err):
            return str(err)  # a range check of a schema's __post_init__
    import re

    missing = re.search(r"Missing mandatory value: ([\w.]+)", " ".join(str(x) for x in chain))
    if missing:
        key = missing.group(1)
        return f"{key} has no value: set {key}=... ({allowed_range(schema, key) or 'see --help'})"
    omega = next((x for x in chain if isinstance(x, OmegaConfBaseException) and getattr(x, "full_key", None)), None)
    if omega is None:
        lines = [line.strip() for line in str(e).splitlines() if line.strip()]
        return "; ".join(lines[:3]) if lines else type(e).__name__
    key = str(omega.full_key)
    allowed = allowed_range(schema, key)
    if isinstance(omega, ConfigKeyError) or "not in" in str(getattr(omega, "msg", "")):
        known = schema_keys(schema, key)
        close = difflib.get_close_matches(key.rsplit(".", 1)[-1], known, n=1)
        parent = key.rsplit(".", 1)[0] + "." if "." in key else ""
        hint = f"did you mean {parent}{close[0]}? " if close else ""
        return f"unknown key {key}: {hint}(the keys here: {', '.join(parent + k for k in known)})"
    if isinstance(omega, MissingMandatoryValue):
        return f"{key} has no value: set {key}=... ({allowed or 'see --help'})"
    if isinstance(omega, ValidationError):
        value = getattr(omega, "value", None)
        shown = f"={value}" if value is not None else ""
        return f"{key}{shown} is not allowed: {key} must be {allowed or 'of type ' + str(omega.msg)}"
    return f"{key}: {str(getattr(omega, 'msg', omega)).splitlines()[0]}"


def precheck(config_name: str, overrides: list[str], schema: type) -> Any:
    """Compose `overrides` as Hydra will and convert them to `schema`; ValueError (one line) if not."""
    from hydra import compose, initialize_config_dir
    from hydra.errors import HydraException

    plain = [o for o in overrides if not o.lstrip("+~").startswith(("hydra.", "hydra/"))]
    try:
        with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3", job_name=config_name):
            cfg = compose(config_name, overrides=plain, return_hydra_config=True)
    except (HydraException, OmegaConfBaseException) as e:
        raise ValueError(hydra_error(e, schema)) from None
    run_cfg = convert(cfg, schema)
    check_choices(dict(cfg.hydra.runtime.choices), run_cfg)
    return run_cfg


def check_choices(choices: Mapping[str, Any], run_cfg: Any) -> None:
    """Checks that depend on the chosen group options: `model=local` needs its own folder (the YAML's
    `path: null` cannot be told from a preset's default path after composition)."""
    if choices.get("model") == "local" and not run_cfg.model.path:
        raise ValueError("model.path has no value: model=local needs model.path=DIR (a CodeGen-architecture "
                         "checkpoint folder) and model.name=NAME (its results folder)")


def hydra_error(e: BaseException, schema: type) -> str:
    """One line for a composition error (a missing or unknown group option, an override's value)."""
    text = str(e)
    if "You must specify" in text or "Could not find" in text or "Could not load" in text:
        lines = [line.strip() for line in text.split("Config search path")[0].splitlines() if line.strip()]
        options = [line.lstrip("- ").strip() for line in lines[1:] if not line.endswith(":")]
        head = lines[0].rstrip(".,")
        return f"{head}; options: {', '.join(options)} (python -m {_app_name(schema)} list)" if options else head
    return config_error(e, schema)


def _app_name(schema: type) -> str:
    return schema.__module__.split(".")[0]


def resolve_threads(threads: str, model: Any, cores: int | None = None) -> int | None:
    """torch's intra-op thread count for `threads` (None = leave torch's default).

    `auto`: when the model generates on the CPU, half the usable cores (at least one), leaving the
    rest to the sandbox workers that run the programs while generation goes on (docs/design.md §6);
    on a GPU, or with no model (`reference`), torch's default. An integer: that many."""
    if threads != "auto":
        return int(threads)
    if getattr(model, "kind", "hub") == "reference":
        return None
    device = getattr(model, "device", "auto")
    if device == "auto":
        import torch

        device = "cuda" if torch.cuda.is_available() else "cpu"
    if device != "cpu":
        return None
    cores = cores or len(os.sched_getaffinity(0))
    return max(1, cores // 2)


def apply_threads(run_cfg: Any) -> None:
    n = resolve_threads(run_cfg.threads, run_cfg.model)
    if n is not None:
        import torch

        torch.set_num_threads(n)
        log.info("torch threads: %d (threads=%s)", n, run_cfg.threads)


def main(config_name: str, schema: type, run: Callable[[Any], Any], doc: str = "",
         argv: list[str] | None = None, prog: str | None = None) -> Any:
    """Run the Hydra app `config_name` (conf/<name>.yaml): `run(run_cfg)` gets the checked config.
    `prog`: the module users run (default: `config_name`). The old keys of `schema.ALIASES` are
    rewritten first (results/aliases.py)."""
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["list"]:
        print(list_text())
        return None
    if "-h" in argv or "--help" in argv:
        print(help_text(config_name, schema, doc, prog))
        return None
    try:
        argv = rewrite(argv, getattr(schema, "ALIASES", ()))
    except ValueError as e:
        fail(str(e))
    if not any(a.split("=")[0] in _UNCHECKED_FLAGS for a in argv):
        try:
            precheck(config_name, argv, schema)
        except ValueError as e:
            if os.environ.get("HYDRA_FULL_ERROR") == "1":
                raise
            fail(str(e))

    def task(cfg: DictConfig) -> Any:
        try:
            from hydra.core.hydra_config import HydraConfig

            run_cfg = convert(cfg, schema)
            check_choices(dict(HydraConfig.get().runtime.choices), run_cfg)
            apply_threads(run_cfg)
            return run(run_cfg)
        except user_errors() as e:
            if os.environ.get("HYDRA_FULL_ERROR") == "1":
                raise
            _drop_empty_output_dir()
            fail(str(e).splitlines()[0] if str(e) else type(e).__name__)

    import hydra

    saved = sys.argv
    sys.argv = [saved[0], *argv]
    try:
        return hydra.main(version_base="1.3", config_path=str(CONF_DIR), config_name=config_name)(task)()
    finally:
        sys.argv = saved


def _first_comment(path: Path) -> str:
    """The first sentence of a YAML file's opening comment (its lines joined; a command example,
    indented under it, ends it), without a trailing colon that introduced the example."""
    lines = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.startswith("# @package"):
            continue
        if not line.startswith("#") or line.startswith("#  ") or not line.strip("# "):
            if lines:
                break
            continue
        lines.append(line.lstrip("# ").rstrip())
    text = " ".join(lines)
    first = re.split(r"(?<=[.!?])\s+(?=[A-Z])", text, maxsplit=1)[0]
    return first.rstrip(":").rstrip()


def list_text(conf_dir: Path = CONF_DIR) -> str:
    """The models, experiments and benchmarks of `conf/`, one line each (name and what it is)."""
    out = []
    for group, title in (("model", "models (model=NAME)"), ("experiment", "experiments (experiment=NAME)"),
                         ("benchmark", "benchmarks (python -m NAME)")):
        out.append(f"{title}:")
        files = sorted((conf_dir / group).glob("*.yaml"))
        width = max(len(p.stem) for p in files)
        out += [f"  {p.stem:<{width}}  {_first_comment(p)}" for p in files]
    return "\n".join(out)


def help_text(config_name: str, schema: type, doc: str = "", prog: str | None = None) -> str:
    """Usage, config groups and every key with its default (from conf/) and its allowed range."""
    from hydra import compose, initialize_config_dir

    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3", job_name=config_name):
        cfg = compose(config_name, overrides=["model=tiny-random"])
    app = f"python -m {prog or config_name}"
    lines = [f"usage: {app} model=NAME [KEY=VALUE ...]     one run (re-running it resumes)",
             f"       {app} -m KEY=A,B [...]            a sweep (Hydra multirun)",
             f"       {app} list                        the models, experiments and benchmarks",
             f"       {app} --hydra-help                Hydra's own flags", ""]
    if doc:
        lines += [line for line in doc.strip().splitlines()[2:] if line.strip()] + [""]
    lines.append("config groups (GROUP=OPTION):")
    for group in ("model", "experiment", "sampling", "sandbox", "benchmark"):
        if group != "model" and group not in {f.name for f in dataclasses.fields(schema)} | {"experiment"}:
            continue
        options = sorted(p.stem for p in (CONF_DIR / group).glob("*.yaml"))
        lines.append(f"  {group}: {', '.join(options)}")
    lines += ["", f"keys (KEY=VALUE; defaults from conf/{config_name}.yaml; model.* shown for model=tiny-random):"]
    rows = []
    for key, f in _schema_fields(schema):
        value = OmegaConf.select(cfg, key, default=None)
        if OmegaConf.is_config(value):
            shown = json.dumps(OmegaConf.to_container(value))
        else:
            shown = json.dumps(value) if value is None or isinstance(value, bool) else str(value)
        rows.append((key, shown if len(shown) <= 30 else shown[:27] + "...", f.metadata.get("allowed", "")))
    width = max(len(k) for k, _, _ in rows)
    lines += [f"  {k:<{width}}  {v:<14} {a}" for k, v, a in rows]
    aliases = getattr(schema, "ALIASES", ())
    if aliases:
        lines += ["", "old names (still accepted, with a warning):"]
        lines += [f"  {a.old} -> {a.new}" + (f" = {a.plus} + {a.old.rsplit('.', 1)[-1]}" if a.plus else "")
                  for a in aliases]
    lines += ["", "Environment: CODEGEN_SHARED_DATA=DIR holds the offline data (DIR/mtpb/mtpb.jsonl, "
              "DIR/codegen-tokenizer/); see the README."]
    return "\n".join(lines)


def _schema_fields(schema: type, prefix: str = ""):
    hints = typing.get_type_hints(schema)
    for f in dataclasses.fields(schema):
        t = hints.get(f.name)
        if dataclasses.is_dataclass(t):
            yield from _schema_fields(t, f"{prefix}{f.name}.")
        else:
            yield f"{prefix}{f.name}", f
