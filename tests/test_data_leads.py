"""Lead conventions: the limb-lead formula (Einthoven / Goldberger) and reordering by name."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from midtecg.data.leads import MODEL_LEADS, WFDB_LEADS, limb_leads, to_model_leads, to_twelve_leads, wfdb_order


def test_limb_leads_follow_einthoven_and_goldberger():
    rng = np.random.default_rng(0)
    ra, la, ll = rng.normal(size=(3, 50))  # electrode potentials
    lead_i, lead_ii, lead_iii = la - ra, ll - ra, ll - la
    avr, avl, avf = ra - (la + ll) / 2, la - (ra + ll) / 2, ll - (ra + la) / 2
    derived = limb_leads(lead_i, avf)
    for name, expected in (("II", lead_ii), ("III", lead_iii), ("aVR", avr), ("aVL", avl)):
        np.testing.assert_allclose(derived[name], expected, atol=1e-12)
    x12 = np.stack([lead_i, lead_ii, lead_iii, avr, avl, avf, *rng.normal(size=(6, 50))])
    np.testing.assert_allclose(to_twelve_leads(to_model_leads(x12)), x12, atol=1e-12)
    tensor = torch.as_tensor(to_model_leads(x12)[None])
    np.testing.assert_allclose(to_twelve_leads(tensor)[0].numpy(), x12, atol=1e-12)
    assert len(MODEL_LEADS) == 8


def test_wfdb_order_puts_any_spelling_in_order():
    names = [n.upper() for n in reversed(WFDB_LEADS)]
    order = wfdb_order(names)
    assert [names[i] for i in order] == [n.upper() for n in WFDB_LEADS]
    with pytest.raises(ValueError, match="rec.hea: lead names .* not the 12 standard leads"):
        wfdb_order(list(WFDB_LEADS[:11]) + ["I"], "rec.hea")
    with pytest.raises(ValueError, match="rec.hea: unknown ECG lead name 'RESP'"):
        wfdb_order(list(WFDB_LEADS[:11]) + ["RESP"], "rec.hea")
