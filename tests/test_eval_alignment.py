"""Tests of midtecg.evaluation.alignment: the aligned similarity against a brute-force overlap Pearson, its
invariances (shift, gain, offset), flat leads, the spectral shortlist and neighbours among real records."""

from __future__ import annotations

import numpy as np
import pytest

from midtecg.data.errors import DataError
from midtecg.evaluation import alignment as al
from midtecg.evaluation.alignment import (
    aligned_neighbors,
    aligned_similarity_pairs,
    similarity_to_distance,
    spectral_signatures,
)

try:
    from test_eval_helpers import fixture_folds
except ImportError:  # tests/ imported as a package
    from tests.test_eval_helpers import fixture_folds


def brute_force(q: np.ndarray, r: np.ndarray, max_lag: int) -> tuple[float, int]:
    """max over lags of the mean per-lead Pearson correlation over the overlap, by explicit slicing."""
    length = q.shape[-1]
    best, best_lag = -np.inf, 0
    for tau in range(-max_lag, max_lag + 1):
        a, b = (q[:, tau:], r[:, : length - tau]) if tau >= 0 else (q[:, : length + tau], r[:, -tau:])
        rs = []
        for lead in range(q.shape[0]):
            if a[lead].std() < 1e-12 or b[lead].std() < 1e-12:
                rs.append(0.0)
            else:
                rs.append(np.corrcoef(a[lead], b[lead])[0, 1])
        if np.mean(rs) > best:
            best, best_lag = float(np.mean(rs)), tau
    return best, best_lag


@pytest.fixture(scope="module")
def real(tmp_path_factory):
    return fixture_folds(tmp_path_factory)


def test_similarity_matches_brute_force_overlap_pearson():
    rng = np.random.default_rng(0)
    q = rng.normal(size=(3, 4, 120)).cumsum(axis=-1)  # random walks: strongly autocorrelated, like ECG leads
    r = rng.normal(size=(4, 4, 120)).cumsum(axis=-1)
    r[2] = np.roll(q[1], -17, axis=-1) + 0.3 * rng.normal(size=(4, 120))  # one related pair
    q[2, 1] = 5.0  # a flat lead: correlation 0 for that lead
    pairs = np.array([[0, 0], [1, 2], [2, 3], [0, 3], [2, 1]])
    sim, lag = aligned_similarity_pairs(q, r, pairs, max_lag=40)
    for (i, j), s, t in zip(pairs, sim, lag):
        ref, ref_lag = brute_force(q[i], r[j], 40)
        assert s == pytest.approx(ref, abs=1e-9)
        assert t == ref_lag
    assert lag[1] == 17 and sim[1] > 0.8  # q[1] is r[2] delayed by 17 samples


def test_blocks_do_not_change_the_result(monkeypatch):
    rng = np.random.default_rng(1)
    q, r = rng.normal(size=(5, 3, 80)), rng.normal(size=(6, 3, 80))
    pairs = np.stack(np.meshgrid(np.arange(5), np.arange(6), indexing="ij"), axis=-1).reshape(-1, 2)
    full = aligned_similarity_pairs(q, r, pairs)
    monkeypatch.setattr(al, "_BLOCK_VALUES", 1)  # one pair per block
    blocked = aligned_similarity_pairs(q, r, pairs)
    np.testing.assert_allclose(blocked[0], full[0], atol=1e-12)
    np.testing.assert_array_equal(blocked[1], full[1])


def test_copies_are_found_exactly_whatever_the_shift_gain_or_offset(real):
    x = real["train"][:6].astype(np.float64)
    rng = np.random.default_rng(2)
    shift = np.array([1, 57, 250, 499, 730, 999])  # circular: 730 and 999 match at 730 - 1000 and -1
    gain = rng.uniform(0.5, 2.0, (6, 12, 1))
    offset = rng.normal(0, 1, (6, 12, 1))
    variants = {
        "rolled": np.stack([np.roll(s, k, axis=-1) for s, k in zip(x, shift)]) * gain + offset,
        "edge_padded": np.stack(
            [np.concatenate([np.repeat(s[:, :1], k, axis=1), s[:, :-k]], axis=1) for s, k in zip(x, shift[:4])]
        ),
        "zero_padded_left": np.stack(
            [np.concatenate([s[:, k:], np.zeros((12, k))], axis=1) for s, k in zip(x, shift[:4])]
        ),
    }
    expected_lag = {
        "rolled": [1, 57, 250, 499, -270, -1],
        "edge_padded": [1, 57, 250, 499],
        "zero_padded_left": [-1, -57, -250, -499],
    }
    for name, v in variants.items():
        n = v.shape[0]
        sim, lag = aligned_similarity_pairs(v, x, np.stack([np.arange(n), np.arange(n)], axis=1))
        np.testing.assert_allclose(sim, 1.0, atol=1e-9, err_msg=name)
        np.testing.assert_array_equal(lag, expected_lag[name], err_msg=name)


def test_flat_and_unrelated_records():
    rng = np.random.default_rng(3)
    x = rng.normal(size=(2, 12, 300))
    flat = np.zeros((1, 12, 300)) + 0.7
    sim, _ = aligned_similarity_pairs(np.concatenate([flat, x[:1]]), x, np.array([[0, 0], [1, 1]]))
    assert sim[0] == 0.0
    assert abs(sim[1]) < 0.15  # white noise: only chance correlation at the best of 301 lags
    assert similarity_to_distance([1.0, 0.0, -1.0, 1.5]).tolist() == pytest.approx([0.0, np.sqrt(2), 2.0, 0.0])


def test_spectral_signatures_are_shift_and_gain_invariant(real):
    x = real["train"][:4].astype(np.float64)
    sig = spectral_signatures(x)
    assert sig.shape == (4, 2 * 12 * 501)
    np.testing.assert_allclose(np.linalg.norm(sig, axis=1), 1.0, rtol=1e-5)
    moved = np.roll(x, 321, axis=-1) * np.linspace(0.5, 3.0, 12)[None, :, None] + 2.0
    np.testing.assert_allclose(spectral_signatures(moved), sig, atol=1e-6)
    assert not spectral_signatures(np.zeros((1, 12, 1000))).any()


def test_neighbors_find_the_sources_of_transformed_copies_among_real_records(real):
    train = real["train"]
    rng = np.random.default_rng(4)
    pick = rng.permutation(train.shape[0])[:8]
    src = train[pick].astype(np.float64)
    shift = rng.integers(20, 480, 8)
    copies = np.stack(
        [np.concatenate([np.repeat(s[:, :1], k, axis=1), s[:, :-k]], axis=1) * 1.25 for s, k in zip(src, shift)]
    ) + 0.02 * rng.normal(size=src.shape)
    nb = aligned_neighbors(np.concatenate([copies, real["val"]]), train, k=2, n_candidates=4)
    np.testing.assert_array_equal(nb["index"][:8, 0], pick)
    np.testing.assert_array_equal(nb["lag"][:8, 0], shift)
    assert nb["distance"][:8, 0].max() < 0.35  # 0.02 mV of noise on ECG leads
    assert nb["distance"][8:, 0].min() > 0.6  # other patients' records are far from any training record
    assert np.all(np.diff(nb["distance"], axis=1) >= 0) and nb["signature_distance"].shape == (18,)
    self_nb = aligned_neighbors(train, train, k=1, n_candidates=3, exclude_self=True)
    assert not np.any(self_nb["index"][:, 0] == np.arange(train.shape[0]))
    assert self_nb["similarity"].max() < 1.0 - 1e-6


def test_validation(real):
    x = real["train"][:3]
    with pytest.raises(DataError, match="shapes differ"):
        aligned_neighbors(x, x[:, :, :500])
    with pytest.raises(DataError, match="k=4"):
        aligned_neighbors(x, x, k=4)
    with pytest.raises(DataError, match="max_lag"):
        aligned_similarity_pairs(x, x, [[0, 0]], max_lag=1000)
    with pytest.raises(DataError, match="out of range"):
        aligned_similarity_pairs(x, x, [[0, 3]])
