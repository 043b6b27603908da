"""Lead conventions: the standard WFDB 12-lead order and the 8 independent leads the model generates.

The limb leads II, III, aVR and aVL are exact linear combinations of I and aVF (Einthoven and Goldberger):
II = aVF + I/2, III = aVF - I/2, aVR = -3/4 I - 1/2 aVF, aVL = 3/4 I - 1/2 aVF (:func:`limb_leads`, the one
implementation; readers that derive missing limb leads and the model's 12-lead output both use it).
The conversions act on the lead axis ``-2`` and accept NumPy arrays or torch tensors.
"""

from __future__ import annotations

WFDB_LEADS: tuple[str, ...] = ("I", "II", "III", "aVR", "aVL", "aVF", "V1", "V2", "V3", "V4", "V5", "V6")
MODEL_LEADS: tuple[str, ...] = ("I", "V1", "V2", "V3", "V4", "V5", "V6", "aVF")

_MODEL_FROM_WFDB = [WFDB_LEADS.index(name) for name in MODEL_LEADS]


def canonical_lead_name(name: str) -> str:
    """Map spellings such as 'AVR', 'avr' or 'v1' to the names used here ('aVR', 'V1')."""
    for lead in WFDB_LEADS:
        if lead.lower() == name.strip().lower():
            return lead
    raise ValueError(f"unknown ECG lead name {name!r}; expected one of {', '.join(WFDB_LEADS)}")


def wfdb_order(lead_names, where: str = "signals") -> list[int]:
    """Indices that put leads named ``lead_names`` (any spelling, any order) in WFDB order: ``x[order]``.

    ``ValueError`` naming ``where`` unless the names are the 12 standard leads, each once.
    """
    names = [str(name) for name in lead_names]
    try:
        canonical = [canonical_lead_name(name) for name in names]
    except ValueError as error:
        raise ValueError(f"{where}: {error}") from None
    if len(canonical) != len(WFDB_LEADS) or set(canonical) != set(WFDB_LEADS):
        raise ValueError(f"{where}: lead names {names} are not the 12 standard leads, each once")
    return [canonical.index(lead) for lead in WFDB_LEADS]


def limb_leads(lead_i, avf) -> dict:
    """II, III, aVR and aVL from leads I and aVF (arrays or tensors of any matching shape)."""
    return {
        "II": avf + 0.5 * lead_i,
        "III": avf - 0.5 * lead_i,
        "aVR": -0.75 * lead_i - 0.5 * avf,
        "aVL": 0.75 * lead_i - 0.5 * avf,
    }


def to_model_leads(x12):
    """Select the model's 8 leads (I, V1-V6, aVF) from a (..., 12, L) array in WFDB order."""
    if x12.shape[-2] != 12:
        raise ValueError(f"expected 12 leads on axis -2, got shape {tuple(x12.shape)}")
    return x12[..., _MODEL_FROM_WFDB, :]


def to_twelve_leads(x8):
    """Rebuild all 12 leads in WFDB order from the model's 8 leads (..., 8, L)."""
    if x8.shape[-2] != 8:
        raise ValueError(f"expected 8 leads (I, V1-V6, aVF) on axis -2, got shape {tuple(x8.shape)}")
    lead_i, chest, avf = x8[..., 0:1, :], x8[..., 1:7, :], x8[..., 7:8, :]
    derived = limb_leads(lead_i, avf)
    limb = [lead_i, derived["II"], derived["III"], derived["aVR"], derived["aVL"], avf]
    if hasattr(x8, "new_zeros"):  # torch tensor
        import torch

        return torch.cat(limb + [chest], dim=-2)
    import numpy as np

    return np.concatenate(limb + [chest], axis=-2)
