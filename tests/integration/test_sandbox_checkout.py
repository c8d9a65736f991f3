"""The sandbox works wherever the project is checked out, /tmp included (CI clones anywhere).

Its private /tmp must not hide the harness's own code: a checkout under /tmp is bound back,
read-only, into the program's view.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]


def test_a_checkout_under_tmp(tmp_path):
    checkout = tmp_path / "checkout"
    shutil.copytree(REPO / "sandbox", checkout / "sandbox", ignore=shutil.ignore_patterns("__pycache__"))
    code = (
        "import sandbox\n"
        "from sandbox import run\n"
        "r = run('open(\"x\", \"w\").write(\"1\")\\nassert 1 + 1 == 2')\n"
        "w = run(f'open({sandbox.__file__!r}, \"a\").write(\"#\")')\n"
        "print(sandbox.__file__, r.status.value, w.status.value, r.isolation.get('filesystem'))\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    out = subprocess.run([sys.executable, "-c", code], cwd=checkout, env=env, capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    path, status, write_status, _ = out.stdout.split()
    assert path.startswith(str(checkout))
    assert status == "passed"
    assert write_status != "passed"  # the checkout is visible to programs read-only, if at all
    assert (checkout / "sandbox" / "__init__.py").read_text() == (REPO / "sandbox" / "__init__.py").read_text()
