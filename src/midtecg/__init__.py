"""midtecg: train, sample and audit generators of synthetic 12-lead ECGs."""

__version__ = "0.1.0"
