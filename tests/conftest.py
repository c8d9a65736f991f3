"""Shared test setup: where the shared data lives, and small fixtures every package uses."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.setdefault("CODEGEN_SHARED_DATA", str(REPO.parent / "shared" / "data")))
# Tests never reach the Hub: whatever they load must come from local files they point at.
os.environ.setdefault("HF_HUB_OFFLINE", "1")


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        pytest.fail(f"shared test data not found at {SHARED_DATA}; set CODEGEN_SHARED_DATA")
    return SHARED_DATA


@pytest.fixture(scope="session")
def tokenizer_dir(shared_data: Path) -> Path:
    return shared_data / "codegen-tokenizer"


@pytest.fixture(scope="session")
def mtpb_path(shared_data: Path) -> Path:
    return shared_data / "mtpb" / "mtpb.jsonl"
