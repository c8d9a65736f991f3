"""Old override keys of the apps, rewritten to today's before Hydra composes (docs/design.md §6).

The typed configs renamed some keys to one vocabulary for limits (`sandbox.wall_s`, the sandbox's
`Limits.wall_s`). The promise is that `python -m humaneval` and `python -m mtpb` take the overrides
they took before, so each app's config module has a table `ALIASES` of `Alias` entries (attached to
its schema as `RunConfig.ALIASES`), and `rewrite(argv, aliases)` turns every old key on the command
line into the new one, printing one line per alias used on stderr:

    warning: sandbox.timeout_s is now sandbox.wall_s (the old name still works)

Forms: `old=V` (V may be a sweep, `old=2,3`; it is passed on verbatim), `+old=V` (the new key
always exists, so this is `new=V`), `++old=V` (`++new=V`), `~old[=V]` (`~new[=V]`).

An alias with `plus` set is not a rename but an offset: `new = <the key plus> + V`. MTPB's old
`sandbox.wall_grace_s=G` ("the sandbox kills at timeout_s + G") becomes
`sandbox.wall_s=${alias_plus:sandbox.official_timeout_s,G}`, an OmegaConf interpolation resolved
after composition, so the official timeout is whatever the rest of the command line and the config
make it, in any order, and a sweep over either key combines as it did. G must be a number > 0 (the
old code took 0 too, but `sandbox.wall_s` must now exceed the official timeout); a list `G1,G2` or
`choice(G1,G2)` sweeps it; `~` on such a key is refused, naming the new key.

Errors are ValueError with one line: an old key given together with its new key (which value
would win is not obvious), a bad offset value.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import Any, Iterable, TextIO

from omegaconf import OmegaConf


@dataclass(frozen=True)
class Alias:
    """`old` is now `new`. With `plus` (a dotted key): `new` = value of `plus` + the old value (s)."""

    old: str
    new: str
    plus: str | None = None

    def warning(self) -> str:
        if self.plus is None:
            return f"warning: {self.old} is now {self.new} (the old name still works)"
        return (f"warning: {self.old} is now {self.new} = {self.plus} + {self.old.rsplit('.', 1)[-1]} "
                f"(the old name still works)")


def _add(key: str, offset: Any, _root_: Any) -> float:
    """`${alias_plus:KEY,G}`: the value of the dotted KEY of the config + G, in seconds (G is a number
    checked by `rewrite`; KEY a key of the schema, so it is there). The key is named rather than
    nested as `${KEY}` because Hydra's override grammar does not take nested interpolations."""
    return float(OmegaConf.select(_root_, key, throw_on_missing=True)) + float(offset)


OmegaConf.register_new_resolver("alias_plus", _add, replace=True)

_PREFIXES = ("++", "+", "~")


def _split(arg: str) -> tuple[str, str, str | None] | None:
    """(prefix, key, value or None) of a `[+|++|~]key[=value]` override; None for a flag or a bare word."""
    if arg.startswith("-"):
        return None
    prefix = next((p for p in _PREFIXES if arg.startswith(p)), "")
    body = arg[len(prefix):]
    key, eq, value = body.partition("=")
    if not eq and prefix != "~":
        return None
    return prefix, key.strip(), value if eq else None


def rewrite(argv: Iterable[str], aliases: Iterable[Alias], stderr: TextIO | None = None) -> list[str]:
    """`argv` with every old key of `aliases` replaced by its new key (module docstring), a warning
    line on `stderr` (default sys.stderr) per alias used. Arguments that are not overrides (flags,
    `list`, Hydra's own `hydra.*` keys) pass unchanged.

    Raises ValueError (one line) when an old key and its new key are both given, or an offset
    alias gets a value that is not a number > 0 (or a list of them)."""
    argv = list(argv)
    table = {a.old: a for a in aliases}
    if not table:
        return argv
    given = {}  # key -> the argument that set it (first one)
    for arg in argv:
        parts = _split(arg)
        if parts is not None:
            given.setdefault(parts[1], arg)
    out, warned = [], []
    for arg in argv:
        parts = _split(arg)
        alias = table.get(parts[1]) if parts is not None else None
        if alias is None:
            out.append(arg)
            continue
        prefix, _, value = parts
        if alias.new in given:
            raise ValueError(f"{arg} and {given[alias.new]} set the same setting ({alias.old} is the old name of "
                             f"{alias.new}): give only {alias.new}")
        if alias not in warned:
            warned.append(alias)
        out.append(_rewritten(alias, prefix, value, arg))
    for alias in warned:
        print(alias.warning(), file=stderr or sys.stderr)
    return out


def _rewritten(alias: Alias, prefix: str, value: str | None, arg: str) -> str:
    new_prefix = "" if prefix == "+" else prefix  # the new key always exists: `+` would refuse it
    if alias.plus is None:
        return f"{new_prefix}{alias.new}" + (f"={value}" if value is not None else "")
    if prefix == "~":
        raise ValueError(f"{arg}: {alias.old} is now {alias.new} (= {alias.plus} + {alias.old.rsplit('.', 1)[-1]}); "
                         f"delete or set {alias.new} instead")
    terms = [f"${{alias_plus:{alias.plus},{g}}}" for g in _offsets(alias, value or "")]
    return f"{new_prefix}{alias.new}=" + ",".join(terms)


def _offsets(alias: Alias, value: str) -> list[float]:
    """The offset(s) of `old=value`: one number, or the elements of a sweep `G1,G2` / `choice(G1,G2)`."""
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.core.override_parser.types import ChoiceSweep
    from hydra.errors import HydraException

    allowed = (f"{alias.old}={value} is not allowed: {alias.old} must be a number of seconds > 0 (or a sweep "
               f"G1,G2): {alias.new} = {alias.plus} + {alias.old.rsplit('.', 1)[-1]} must exceed {alias.plus}")
    try:
        parsed = OverridesParser.create().parse_override(f"{alias.old}={value}").value()
    except HydraException:
        raise ValueError(allowed) from None
    items = parsed.list if isinstance(parsed, ChoiceSweep) else [parsed]
    if not items or not all(isinstance(g, (int, float)) and not isinstance(g, bool) and g > 0 for g in items):
        raise ValueError(allowed)
    return [float(g) for g in items]


__all__ = ["Alias", "rewrite"]


def rename_flags(argv: Iterable[str], renames: dict[str, str], stderr: TextIO | None = None) -> list[str]:
    """The command-line flags of a plain (argparse) CLI under their current names: each old flag of
    `renames` ("--timeout-s" -> "--wall-s"), also in its `--flag=value` form, becomes the new one,
    with one warning line per old flag on `stderr`. Raises ValueError (one line) when a command
    gives both an old flag and its new name."""
    out, warned = [], set()
    args = list(argv)
    for arg in args:
        flag, eq, value = arg.partition("=")
        new = renames.get(flag)
        if new is None:
            out.append(arg)
            continue
        if any(a == new or a.startswith(new + "=") for a in args):
            raise ValueError(f"{flag} and {new} are the same setting ({flag} is its old name): give only {new}")
        if flag not in warned:
            warned.add(flag)
            print(f"warning: {flag} is now {new} (the old name still works)", file=stderr or sys.stderr)
        out.append(new + eq + value)
    return out
