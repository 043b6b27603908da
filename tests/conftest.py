"""Shared pytest fixtures.

- ``ptbxl_fixture``: path of the small real PTB-XL subset in ``tests/fixtures/ptbxl`` (40 records, official
  layout; see its README). Read-only: copy it (``shutil.copytree``) before changing anything.
- ``shared_ptbxl``: path of the larger PTB-XL subset in ``../shared/data/ptbxl`` (relative to the repository
  root, 1,500 records); the test is skipped cleanly when that folder is absent.
- ``copy``: a writable copy of the fixture folder in the test's tmp_path, for tests that damage files.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PTBXL_FIXTURE = REPO / "tests" / "fixtures" / "ptbxl"
SHARED_PTBXL = REPO.parent / "shared" / "data" / "ptbxl"


@pytest.fixture(scope="session")
def ptbxl_fixture() -> Path:
    """The 40-record PTB-XL fixture folder (do not modify it in place)."""
    return PTBXL_FIXTURE


@pytest.fixture(scope="session")
def shared_ptbxl() -> Path:
    """The PTB-XL subset in ../shared/data/ptbxl; skips the test when it is not there."""
    if not (SHARED_PTBXL / "ptbxl_database.csv").is_file():
        pytest.skip(f"{SHARED_PTBXL} is not present")
    return SHARED_PTBXL


@pytest.fixture
def copy(ptbxl_fixture, tmp_path) -> Path:
    """A writable copy of the 40-record fixture in tmp_path."""
    target = tmp_path / "ptbxl"
    shutil.copytree(ptbxl_fixture, target)
    for path in target.rglob("*"):
        path.chmod(0o644 if path.is_file() else 0o755)
    return target
