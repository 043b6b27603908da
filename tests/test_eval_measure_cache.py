"""Tests of midtecg.evaluation.measure_cache: keys, hits, misses, corrupt files, atomic writes, settings."""

from __future__ import annotations

import os
import warnings

import numpy as np
import pytest

from midtecg.evaluation.measure_cache import (
    MeasureCacheWarning,
    cached_measure,
    default_cache_dir,
    signals_key,
)


class Counter:
    def __init__(self):
        self.calls = 0

    def __call__(self):
        self.calls += 1
        return {
            "value": np.arange(3, dtype=np.float64) * self.calls,
            "ok": np.array([True, False, True]),
            "errors": np.array(["", "flat signal", ""]),
        }


@pytest.fixture
def signals():
    return np.random.default_rng(0).normal(size=(3, 12, 100)).astype(np.float32)


def test_second_call_reads_the_cache(tmp_path, signals):
    compute = Counter()
    first = cached_measure("m", signals, 100.0, compute, cache_dir=tmp_path, version="1")
    second = cached_measure("m", signals, 100.0, compute, cache_dir=tmp_path, version="1")
    assert compute.calls == 1
    assert set(second) == {"value", "ok", "errors"}
    for k in first:
        np.testing.assert_array_equal(first[k], second[k])
        assert first[k].dtype == second[k].dtype
    assert list(second["errors"]) == ["", "flat signal", ""]
    files = list(tmp_path.iterdir())
    assert len(files) == 1 and files[0].name.startswith("m-") and files[0].suffix == ".npz"  # no temp file left


def test_any_change_of_the_inputs_is_a_new_key(tmp_path, signals):
    key = signals_key(signals, 100.0, "m", "1")
    changed = signals.copy()
    changed[2, 5, 50] += 1e-6
    others = [
        signals_key(changed, 100.0, "m", "1"),
        signals_key(signals, 500.0, "m", "1"),
        signals_key(signals, 100.0, "n", "1"),
        signals_key(signals, 100.0, "m", "2"),
        signals_key(signals.astype(np.float64), 100.0, "m", "1"),
        signals_key(signals.reshape(3, 6, 200), 100.0, "m", "1"),
    ]
    assert len({key, *others}) == 1 + len(others)
    assert signals_key(np.asfortranarray(signals), 100.0, "m", "1") == key  # memory layout does not matter
    compute = Counter()
    cached_measure("m", signals, 100.0, compute, cache_dir=tmp_path, version="1")
    cached_measure("m", changed, 100.0, compute, cache_dir=tmp_path, version="1")
    cached_measure("m", signals, 100.0, compute, cache_dir=tmp_path, version="2")
    assert compute.calls == 3


@pytest.mark.parametrize("damage", ["truncate", "garbage", "other_key"])
def test_corrupt_or_foreign_file_is_recomputed_with_a_warning(tmp_path, signals, damage):
    compute = Counter()
    cached_measure("m", signals, 100.0, compute, cache_dir=tmp_path, version="1")
    (path,) = tmp_path.iterdir()
    if damage == "truncate":
        path.write_bytes(path.read_bytes()[:100])
    elif damage == "garbage":
        path.write_bytes(b"not an npz file at all")
    else:  # a valid file written for other signals, under this file name
        other = tmp_path / "other"
        cached_measure("m", signals + 1, 100.0, compute, cache_dir=other, version="1")
        os.replace(next(other.iterdir()), path)
    with pytest.warns(MeasureCacheWarning, match="unusable"):
        out = cached_measure("m", signals, 100.0, compute, cache_dir=tmp_path, version="1")
    assert compute.calls == (3 if damage == "other_key" else 2)
    np.testing.assert_array_equal(out["value"], np.arange(3) * compute.calls)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # rewritten: the next call is a clean hit
        again = cached_measure("m", signals, 100.0, compute, cache_dir=tmp_path, version="1")
    np.testing.assert_array_equal(again["value"], out["value"])


def test_disabled_and_default_folders(tmp_path, signals, monkeypatch):
    compute = Counter()
    cached_measure("m", signals, 100.0, compute, cache_dir=False, version="1")
    cached_measure("m", signals, 100.0, compute, cache_dir=False, version="1")
    assert compute.calls == 2
    monkeypatch.setenv("MIDTECG_CACHE_DIR", str(tmp_path / "env"))
    assert default_cache_dir() == tmp_path / "env"
    cached_measure("m", signals, 100.0, compute, cache_dir=None, version="1")
    assert len(list((tmp_path / "env").iterdir())) == 1
    monkeypatch.delenv("MIDTECG_CACHE_DIR")
    assert default_cache_dir() == default_cache_dir().home() / ".cache" / "midtecg" / "measurements"


def test_unwritable_folder_only_warns(tmp_path, signals):
    blocker = tmp_path / "file"
    blocker.write_text("a file where the folder should be")
    compute = Counter()
    with pytest.warns(MeasureCacheWarning, match="could not write"):
        out = cached_measure("m", signals, 100.0, compute, cache_dir=blocker / "sub", version="1")
    assert compute.calls == 1 and out["value"].shape == (3,)


def test_bad_names_and_results_are_refused(tmp_path, signals):
    with pytest.raises(ValueError, match="file-name"):
        cached_measure("../m", signals, 100.0, Counter(), cache_dir=tmp_path, version="1")
    with pytest.raises(TypeError, match="dict"):
        cached_measure("m", signals, 100.0, lambda: [1, 2], cache_dir=tmp_path, version="1")
    with pytest.raises(TypeError, match="object array"):
        cached_measure("m", signals, 100.0, lambda: {"x": np.array([{}, None])}, cache_dir=tmp_path, version="1")
