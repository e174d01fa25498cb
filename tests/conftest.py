"""Shared fixtures. Area fixtures live in tests/fixtures/<area>.py and load automatically."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("MLFLOW_ENABLE_ASYNC_LOGGING", "false")

TESTS = Path(__file__).parent
sys.path.insert(0, str(TESTS))
pytest_plugins = sorted(
    f"fixtures.{p.stem}" for p in (TESTS / "fixtures").glob("*.py") if p.stem != "__init__"
)

REPO = TESTS.parent
SHARED_DATA = REPO.parent / "shared" / "data"


@pytest.fixture
def home(tmp_path: Path) -> Path:
    """An empty project home."""
    return tmp_path / "home"


@pytest.fixture
def forge(home: Path):
    """A local-backend project in a fresh home, acting as the `admin` principal."""
    import llmforge

    return llmforge.connect(backend="local", home=str(home), user="admin")
