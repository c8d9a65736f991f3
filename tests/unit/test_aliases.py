"""The override keys of before the typed configs still work (results/aliases.py, each app's ALIASES):
through the app entry each old key sets the new one with one warning line, in single runs and
sweeps; an old key with its new key is one error line, exit 2, and no directory."""

from __future__ import annotations

import io

import pytest

from humaneval.config import RunConfig as HumanEvalConfig
from mtpb.config import RunConfig as MtpbConfig
from results import app
from results.aliases import Alias, rewrite

APPS = {"humaneval": HumanEvalConfig, "mtpb": MtpbConfig}
WARN_HE = "warning: sandbox.timeout_s is now sandbox.wall_s (the old name still works)"
WARN_TIMEOUT = "warning: sandbox.timeout_s is now sandbox.official_timeout_s (the old name still works)"
WARN_GRACE = ("warning: sandbox.wall_grace_s is now sandbox.wall_s = sandbox.official_timeout_s + wall_grace_s "
              "(the old name still works)")


def entry(name: str, *argv: str, tmp_path):
    seen = []
    app.main(name, APPS[name], seen.append,
             argv=[*argv, "model=tiny-random", f"run_dir={tmp_path / 'run'}", f"hydra.run.dir={tmp_path / 'hydra'}",
                   f"hydra.sweep.dir={tmp_path / 'sweep'}"])
    return seen


def test_the_tables_name_the_renamed_keys():
    assert HumanEvalConfig.ALIASES == (Alias("sandbox.timeout_s", "sandbox.wall_s"),)
    assert MtpbConfig.ALIASES == (Alias("sandbox.timeout_s", "sandbox.official_timeout_s"),
                                  Alias("sandbox.wall_grace_s", "sandbox.wall_s", plus="sandbox.official_timeout_s"))


@pytest.mark.parametrize("argv, expected", [
    (["sandbox.timeout_s=5"], ["sandbox.wall_s=5"]),
    (["+sandbox.timeout_s=5"], ["sandbox.wall_s=5"]),  # the new key exists: `+` would refuse it
    (["++sandbox.timeout_s=5"], ["++sandbox.wall_s=5"]),
    (["~sandbox.timeout_s"], ["~sandbox.wall_s"]),
    (["sandbox.timeout_s=2,3"], ["sandbox.wall_s=2,3"]),
    (["-m", "sandbox.timeout_s=range(1,3)", "x.timeout_s=1"], ["-m", "sandbox.wall_s=range(1,3)", "x.timeout_s=1"]),
    (["list"], ["list"]),
])
def test_a_rename_keeps_the_form_and_the_value(argv, expected):
    err = io.StringIO()
    assert rewrite(argv, HumanEvalConfig.ALIASES, err) == expected
    assert err.getvalue() == (WARN_HE + "\n" if argv != expected else "")


@pytest.mark.parametrize("argv, expected", [
    (["sandbox.wall_grace_s=5"], ["sandbox.wall_s=${alias_plus:sandbox.official_timeout_s,5.0}"]),
    (["sandbox.wall_grace_s=1,2.5"],
     ["sandbox.wall_s=${alias_plus:sandbox.official_timeout_s,1.0},${alias_plus:sandbox.official_timeout_s,2.5}"]),
    (["sandbox.wall_grace_s=choice(1,2)"],
     ["sandbox.wall_s=${alias_plus:sandbox.official_timeout_s,1.0},${alias_plus:sandbox.official_timeout_s,2.0}"]),
])
def test_the_grace_becomes_an_offset_from_the_official_timeout(argv, expected):
    assert rewrite(argv, MtpbConfig.ALIASES, io.StringIO()) == expected


def test_one_warning_per_alias_used():
    err = io.StringIO()
    rewrite(["sandbox.wall_grace_s=1", "sandbox.timeout_s=2", "sandbox.timeout_s=3"], MtpbConfig.ALIASES, err)
    assert err.getvalue().splitlines() == [WARN_GRACE, WARN_TIMEOUT]


@pytest.mark.parametrize("name, overrides, official, wall", [
    ("humaneval", ["sandbox.timeout_s=5"], None, 5.0),
    ("humaneval", ["+sandbox.timeout_s=5"], None, 5.0),
    ("humaneval", ["++sandbox.timeout_s=5"], None, 5.0),
    ("mtpb", ["sandbox.timeout_s=12"], 12.0, 30.0),  # the official limit; the wall clock keeps its default
    ("mtpb", ["sandbox.wall_grace_s=5"], 20.0, 25.0),  # the default official limit + the grace
    ("mtpb", ["sandbox.wall_grace_s=5", "sandbox.timeout_s=12"], 12.0, 17.0),
    ("mtpb", ["sandbox.timeout_s=12", "sandbox.wall_grace_s=5"], 12.0, 17.0),
    ("mtpb", ["sandbox.wall_grace_s=5", "sandbox.official_timeout_s=12"], 12.0, 17.0),
    ("mtpb", ["sandbox.official_timeout_s=12", "++sandbox.wall_grace_s=0.5"], 12.0, 12.5),
])
def test_an_old_key_sets_the_new_one_through_the_app_entry(name, overrides, official, wall, tmp_path, capsys):
    (cfg,) = entry(name, *overrides, tmp_path=tmp_path)
    assert cfg.sandbox.wall_s == wall and isinstance(cfg.sandbox.wall_s, float)
    if official is not None:
        assert cfg.sandbox.official_timeout_s == official
    warnings = [line for line in capsys.readouterr().err.splitlines() if line.startswith("warning: ")]
    expected = {"sandbox.timeout_s": WARN_HE if name == "humaneval" else WARN_TIMEOUT, "sandbox.wall_grace_s": WARN_GRACE}
    assert warnings == [expected[o.lstrip("+").split("=")[0]] for o in overrides if "official" not in o.split("=")[0]]


def test_a_sweep_over_old_keys_runs_each_point(tmp_path, capsys):
    seen = entry("mtpb", "-m", "sandbox.wall_grace_s=1,2", "sandbox.timeout_s=5,6", tmp_path=tmp_path)
    assert sorted((c.sandbox.official_timeout_s, c.sandbox.wall_s) for c in seen) == [
        (5.0, 6.0), (5.0, 7.0), (6.0, 7.0), (6.0, 8.0)]
    assert capsys.readouterr().err.count("warning: ") == 2  # once per alias, not per job


def test_a_humaneval_sweep_over_the_old_timeout(tmp_path, capsys):
    seen = entry("humaneval", "-m", "sandbox.timeout_s=2,3", tmp_path=tmp_path)
    assert sorted(c.sandbox.wall_s for c in seen) == [2.0, 3.0]
    assert capsys.readouterr().err.count(WARN_HE) == 1


@pytest.mark.parametrize("name, old, new", [
    ("humaneval", "sandbox.timeout_s=3", "sandbox.wall_s=4"),
    ("humaneval", "sandbox.wall_s=4", "+sandbox.timeout_s=3"),
    ("mtpb", "sandbox.timeout_s=3", "sandbox.official_timeout_s=4"),
    ("mtpb", "sandbox.official_timeout_s=4", "sandbox.timeout_s=3"),
    ("mtpb", "sandbox.wall_grace_s=3", "++sandbox.wall_s=40"),
    ("mtpb", "sandbox.wall_s=40", "sandbox.wall_grace_s=3"),
])
def test_old_and_new_name_together_is_one_line_exit_2_and_no_directory(name, old, new, tmp_path, capsys):
    with pytest.raises(SystemExit) as stop:
        entry(name, old, new, tmp_path=tmp_path)
    err = capsys.readouterr().err
    assert stop.value.code == 2 and err.count("\n") == 1 and err.startswith("error: "), err
    old_key, new_key = sorted((old, new), key=lambda o: "wall_s" in o or "official" in o)
    assert f"give only {new_key.lstrip('+').split('=')[0]}" in err and old_key.lstrip("+").split("=")[0] in err
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("value", ["-1", "0", "abc", "nan", "[1,2]", "range(1,3)"])
def test_a_bad_grace_is_one_line_exit_2(value, tmp_path, capsys):
    with pytest.raises(SystemExit) as stop:
        entry("mtpb", f"sandbox.wall_grace_s={value}", tmp_path=tmp_path)
    err = capsys.readouterr().err
    assert stop.value.code == 2 and err.count("\n") == 1
    assert err.startswith(f"error: sandbox.wall_grace_s={value} is not allowed: sandbox.wall_grace_s must be a number")
    assert list(tmp_path.iterdir()) == []


def test_deleting_the_grace_names_the_new_key(tmp_path, capsys):
    with pytest.raises(SystemExit):
        entry("mtpb", "~sandbox.wall_grace_s", tmp_path=tmp_path)
    assert "sandbox.wall_s" in capsys.readouterr().err


@pytest.mark.parametrize("name", sorted(APPS))
def test_help_lists_the_old_names(name, capsys):
    app.main(name, APPS[name], lambda cfg: None, argv=["--help"])
    out = capsys.readouterr().out
    assert all(f"  {a.old} -> {a.new}" in out for a in APPS[name].ALIASES)
