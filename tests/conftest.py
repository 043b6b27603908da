"""Shared pytest fixtures.

- ``ptbxl_fixture``: path of the small real PTB-XL subset in ``tests/fixtures/ptbxl`` (40 records, official
  layout; see its README). Read-only: copy it (``shutil.copytree``) before changing anything.
- ``shared_ptbxl``: path of the larger PTB-XL subset in ``../shared/data/ptbxl`` (relative to the repository
  root, 2,482 records in 2026-12); the test is skipped cleanly when that folder is absent.
- ``copy``: a writable copy of the fixture folder in the test's tmp_path, for tests that damage files.
- ``fixture_cache``: the fixture prepared as a 100 Hz cache (once per session, in a temporary folder).

Every test runs with ``MIDTECG_CACHE_DIR`` pointing at a temporary folder, so nothing is cached in the user's
home directory, and with one torch thread: the tensors are small, and one intra-op thread is much faster than
two contended ones on a shared CPU.
"""

from __future__ import annotations

import os
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


@pytest.fixture(scope="session", autouse=True)
def _private_measure_cache(tmp_path_factory):
    """Measurement caches of the evaluation suite go to a temporary folder, never to ~/.cache."""
    before = os.environ.get("MIDTECG_CACHE_DIR")
    os.environ["MIDTECG_CACHE_DIR"] = str(tmp_path_factory.mktemp("midtecg-cache"))
    yield
    if before is None:
        os.environ.pop("MIDTECG_CACHE_DIR", None)
    else:
        os.environ["MIDTECG_CACHE_DIR"] = before


@pytest.fixture(scope="session")
def fixture_cache(tmp_path_factory) -> Path:
    """The 40-record fixture prepared as a 100 Hz cache (folds 1-8: 20 records, 9: 10, 10: 10)."""
    from midtecg.data.cache import prepare

    return prepare(PTBXL_FIXTURE, tmp_path_factory.mktemp("cache") / "ptbxl-100hz", progress=False)


@pytest.fixture(scope="session", autouse=True)
def _one_thread():
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)
