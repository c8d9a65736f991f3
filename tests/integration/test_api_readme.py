"""The README's "Python API" section runs as shown (on a small random checkpoint in the Hub layout
with the real tokenizer files: `from_pretrained`'s repo id is replaced by that folder), and its
first snippet, the documentation's usage example, prints what transformers prints for the same
calls on the same folder (docs/api.md; docs/design.md §2)."""

from __future__ import annotations

import contextlib
import io
import re
from pathlib import Path

import pytest

from tests.integration.test_api_model import folder  # noqa: F401  (fixture: the random checkpoint)

transformers = pytest.importorskip("transformers")  # the test extra
pytestmark = pytest.mark.integration

README = Path(__file__).resolve().parents[2] / "README.md"
REPO_ID = "Salesforce/codegen-350M-mono"


def api_snippets() -> list[str]:
    text = README.read_text()
    section = text[text.index("## Python API"):]
    section = section[: section.index("\n## ", 1)]
    return re.findall(r"```python\n(.*?)```", section, re.DOTALL)


def run(code: str, namespace: dict) -> str:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(code, str(README), "exec"), namespace)
    return out.getvalue()


def test_the_usage_example_opens_the_section():
    first = api_snippets()[0]
    assert "CodeGenForCausalLM.from_pretrained" in first and 'tokenizer("def hello_world():", return_tensors="pt")' in first
    assert first.rstrip().endswith("print(tokenizer.decode(completion[0]))")


def test_readme_python_api_runs_as_shown(folder):  # noqa: F811
    snippets = [s.replace(repr(REPO_ID).replace("'", '"'), repr(str(folder))) for s in api_snippets()]
    assert len(snippets) >= 2 and all(REPO_ID not in s for s in snippets)
    namespace: dict = {}
    printed = run(snippets[0], namespace)

    model = transformers.AutoModelForCausalLM.from_pretrained(str(folder))
    tokenizer = transformers.AutoTokenizer.from_pretrained(str(folder))
    completion = model.generate(**tokenizer("def hello_world():", return_tensors="pt"))
    assert printed == tokenizer.decode(completion[0]) + "\n"
    assert namespace["completion"].tolist() == completion.tolist()  # token for token

    for code in snippets[1:]:  # the rest continues in the same session, as a reader would run it
        assert run(code, namespace).strip()
