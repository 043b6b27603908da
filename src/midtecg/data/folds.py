"""PTB-XL's ten stratified folds and the default split (method.md section 6): folds 1-8 train, 9 validation,
10 test. Plain constants, imported by the PTB-XL reader and by the config checks alike."""

from __future__ import annotations

__all__ = ["DEFAULT_SPLITS", "FOLDS"]

DEFAULT_SPLITS: dict[str, tuple[int, ...]] = {"train": (1, 2, 3, 4, 5, 6, 7, 8), "val": (9,), "test": (10,)}
FOLDS: tuple[int, ...] = tuple(sorted(f for folds in DEFAULT_SPLITS.values() for f in folds))  # 1 .. 10
