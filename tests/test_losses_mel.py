"""Mel filterbank and multi-resolution mel loss against an independent librosa + NumPy computation."""

import numpy as np
import pytest
import torch

from midtecg.losses import (
    PAPER_SCALES,
    RHYTHM_SCALES,
    SMALL_SCALES,
    MelSpectrogramLoss,
    hz_to_mel,
    mel_filterbank,
    mel_magnitude,
    mel_to_hz,
    multi_resolution_mel_loss,
)
from midtecg.losses import mel as mel_module

librosa = pytest.importorskip("librosa")

SR = 100


def ref_mel(signals: np.ndarray, n_fft: int, hop: int, n_mels: int) -> np.ndarray:
    """librosa STFT (centred, reflect, periodic Hann) + librosa's Slaney filterbank, float64."""
    fb = librosa.filters.mel(sr=SR, n_fft=n_fft, n_mels=n_mels, fmin=0.0, fmax=SR / 2, dtype=np.float64)
    spec = np.abs(
        librosa.stft(
            signals.astype(np.float64),
            n_fft=n_fft,
            hop_length=hop,
            win_length=n_fft,
            window="hann",
            center=True,
            pad_mode="reflect",
        )
    )
    return np.einsum("mf,...ft->...mt", fb, spec)


def ref_loss(x_hat: np.ndarray, x: np.ndarray, scales, order: str = "clamp_first") -> float:
    """audiotools' order: clamp the magnitude at 1e-5, then square, then log10 (method.md section 4)."""

    def log_power(m):
        return np.log10(np.maximum(m, 1e-5) ** 2) if order == "clamp_first" else np.log10(np.maximum(m**2, 1e-5))

    total = 0.0
    for n_fft, hop, n_mels in scales:
        mh = ref_mel(x_hat.reshape(-1, x_hat.shape[-1]), n_fft, hop, n_mels)
        m = ref_mel(x.reshape(-1, x.shape[-1]), n_fft, hop, n_mels)
        log_l1 = np.abs(log_power(mh) - log_power(m)).mean()
        total += log_l1 + np.abs(mh - m).mean()
    return float(total)


@pytest.fixture(scope="module")
def ecgs():
    """Realistic 10 s, 100 Hz ECG-like signals (B=2, C=3, L=1000), in mV."""
    try:
        import neurokit2 as nk

        sigs = [
            nk.ecg_simulate(duration=10, sampling_rate=SR, heart_rate=hr, random_state=i)
            for i, hr in enumerate((55, 70, 85, 100, 120, 150))
        ]
        x = np.stack(sigs).reshape(2, 3, 1000)
    except ImportError:  # synthetic fallback: narrow periodic pulses plus baseline wander
        t = np.arange(1000) / SR
        x = np.stack(
            [
                np.exp(-(((t * hr / 60) % 1 - 0.3) ** 2) / 2e-4) + 0.1 * np.sin(2 * np.pi * 0.3 * t + hr)
                for hr in (55, 70, 85, 100, 120, 150)
            ]
        ).reshape(2, 3, 1000)
    return x.astype(np.float32)


@pytest.mark.parametrize("n_fft,n_mels", [(512, 64), (256, 128), (64, 16), (100, 20)])
def test_filterbank_matches_librosa(n_fft, n_mels):
    ref = librosa.filters.mel(sr=SR, n_fft=n_fft, n_mels=n_mels, fmin=0, fmax=50, dtype=np.float64)
    ours = mel_filterbank(SR, n_fft, n_mels, f_min=0, f_max=None, dtype=torch.float64)
    assert ours.shape == (n_mels, n_fft // 2 + 1)
    np.testing.assert_allclose(ours.numpy(), ref, rtol=1e-10, atol=1e-12)
    assert mel_filterbank(SR, n_fft, n_mels).dtype == torch.float32


def test_filterbank_matches_librosa_above_1khz():
    """Exercises the logarithmic part of the Slaney scale (not reached at 100 Hz) and f_min / f_max."""
    ref = librosa.filters.mel(sr=16000, n_fft=1024, n_mels=80, fmin=30.0, fmax=7600.0, dtype=np.float64)
    ours = mel_filterbank(16000, 1024, 80, f_min=30.0, f_max=7600.0, dtype=torch.float64).numpy()
    np.testing.assert_allclose(ours, ref, rtol=1e-9, atol=1e-12)
    f = np.array([0.0, 10.0, 999.0, 1000.0, 1500.0, 8000.0])
    np.testing.assert_allclose(hz_to_mel(f), librosa.hz_to_mel(f, htk=False), rtol=1e-12)
    np.testing.assert_allclose(mel_to_hz(hz_to_mel(f)), f, rtol=1e-12, atol=1e-12)
    with pytest.raises(ValueError):
        mel_filterbank(SR, 64, 16, f_max=60.0)


@pytest.mark.parametrize("scale", PAPER_SCALES + SMALL_SCALES)
def test_mel_magnitude_matches_librosa(scale, ecgs):
    x = torch.from_numpy(ecgs)
    ours = mel_magnitude(x, *scale, fs=SR)
    ref = ref_mel(ecgs.reshape(-1, 1000), *scale)
    assert ours.dtype == torch.float32 and ours.shape == ref.shape == (6, scale.n_mels, 1 + 1000 // scale.hop_length)
    np.testing.assert_allclose(ours.numpy(), ref, rtol=1e-5, atol=1e-6 * np.abs(ref).max())


@pytest.mark.filterwarnings("ignore:n_fft=1024 is too large:UserWarning")  # librosa, on the rhythm scale
@pytest.mark.parametrize("scales", [PAPER_SCALES, SMALL_SCALES, RHYTHM_SCALES], ids=["paper", "small", "rhythm"])
def test_loss_matches_librosa_reference(scales, ecgs):
    rng = np.random.default_rng(0)
    # random signals at the ECG scale (std 0.3 mV)
    a = (0.3 * rng.standard_normal((3, 8, 1000))).astype(np.float32)
    b = (0.3 * rng.standard_normal((3, 8, 1000))).astype(np.float32)
    ours = multi_resolution_mel_loss(torch.from_numpy(a), torch.from_numpy(b), scales).item()
    assert ours == pytest.approx(ref_loss(a, b, scales), rel=1e-6)
    # realistic: an ECG against a noisy, slightly scaled copy of itself
    noisy = (0.9 * ecgs + 0.05 * rng.standard_normal(ecgs.shape)).astype(np.float32)
    ours = multi_resolution_mel_loss(torch.from_numpy(noisy), torch.from_numpy(ecgs), scales).item()
    assert ours == pytest.approx(ref_loss(noisy, ecgs, scales), rel=1e-6)


def _beat_train(beat_times: np.ndarray) -> np.ndarray:
    """Narrow QRS-like pulses with a T-like bump 250 ms later, 10 s at 100 Hz."""
    t = np.arange(1000) / SR
    d = t[None, :] - beat_times[:, None]
    return (np.exp(-(d**2) / (2 * 0.015**2)) + 0.3 * np.exp(-((d - 0.25) ** 2) / (2 * 0.05**2))).sum(0)


def test_rhythm_scale_sees_irregular_rhythm_more_than_the_paper_scales():
    """Against a regular beat train, a train of the same beats with 15 % RR jitter costs the whole-record
    scale of the "rhythm" preset several times what the same beats shifted in phase cost (its magnitude hardly
    depends on the phase), and more in absolute terms than the paper's two scales together."""
    rng = np.random.default_rng(0)
    whole_record = [RHYTHM_SCALES[-1]]
    assert RHYTHM_SCALES[:-1] == PAPER_SCALES and whole_record[0].n_fft >= 1000
    for hr in (60, 75, 100):
        rr = 60 / hr
        beats = np.arange(0.3, 10, rr)
        regular = _beat_train(beats)
        shifted = _beat_train(beats + 0.37 * rr)
        jitter = _beat_train(np.cumsum(np.r_[0.3, rr * (1 + 0.15 * rng.standard_normal(len(beats) - 1))]))

        def loss(a, b, scales):
            return multi_resolution_mel_loss(torch.tensor(a[None]), torch.tensor(b[None]), scales, fs=SR).item()

        assert loss(jitter, regular, whole_record) > 3 * loss(shifted, regular, whole_record)
        assert loss(jitter, regular, whole_record) > loss(jitter, regular, PAPER_SCALES)


def test_log_term_clamps_the_magnitude_before_squaring():
    """Where the mel magnitude lies between 1e-5 and sqrt(1e-5) = 3.2e-3 the two orders differ: clamping the
    power flattens log10(M^2) at -5, clamping the magnitude keeps it down to -10. Faint noise (std 1e-4 and
    3e-4 mV: every mel bin in that range) against silence (every bin clamped) shows it."""
    scale = ((64, 16, 16),)
    g = torch.Generator().manual_seed(0)
    x = torch.zeros(1, 2, 200, dtype=torch.float64)
    for std in (1e-4, 3e-4):
        x_hat = std * torch.randn(x.shape, generator=g, dtype=torch.float64)
        m_hat = mel_magnitude(x_hat, 64, 16, 16).numpy()
        assert 1e-5 < m_hat.min() and m_hat.max() < 1e-5**0.5
        lin = m_hat.mean()  # mean |M_hat - 0|
        expected = np.abs(2 * np.log10(m_hat) - 2 * np.log10(1e-5)).mean() + lin
        ours = multi_resolution_mel_loss(x_hat, x, scale).item()
        assert ours == pytest.approx(expected, rel=1e-9)
        assert ours == pytest.approx(ref_loss(x_hat.numpy(), x.numpy(), scale), rel=1e-9)
        # the old order, log10(max(M^2, 1e-5)), clamps both log powers at -5: no log term at all
        old = multi_resolution_mel_loss(x_hat, x, scale, log_order="square_first").item()
        assert old == pytest.approx(lin, rel=1e-9) and ours > old + 1.0
    with pytest.raises(ValueError, match="log order"):
        multi_resolution_mel_loss(x_hat, x, scale, log_order="power")


def test_zero_for_identical_and_shape_rules(ecgs):
    x = torch.from_numpy(ecgs)
    assert multi_resolution_mel_loss(x, x.clone()).item() == 0.0
    # leads are separate signals: (B, C, L), (B*C, L) give the same value
    y = x + 0.1
    assert (
        multi_resolution_mel_loss(y, x).item()
        == multi_resolution_mel_loss(y.reshape(6, 1000), x.reshape(6, 1000)).item()
    )
    with pytest.raises(ValueError):
        multi_resolution_mel_loss(x, x[..., :999])
    with pytest.raises(ValueError):  # n_fft 512 needs more than 256 samples for reflect padding
        multi_resolution_mel_loss(x[..., :256], x[..., :256])
    multi_resolution_mel_loss(x[..., :257], x[..., :257])


def test_gradients():
    g = torch.Generator().manual_seed(0)
    x = 0.3 * torch.randn(2, 8, 1000, generator=g)
    x_hat = (x + 0.1 * torch.randn(2, 8, 1000, generator=g)).requires_grad_(True)
    loss = multi_resolution_mel_loss(x_hat, x)
    loss.backward()
    assert torch.isfinite(x_hat.grad).all() and x_hat.grad.abs().sum() > 0
    # gradcheck on a tiny float64 case (one short scale); inputs far from the L1 kinks
    a = torch.randn(1, 2, 40, generator=g, dtype=torch.float64)
    b = (a + 0.5 * torch.randn(1, 2, 40, generator=g, dtype=torch.float64)).requires_grad_(True)
    assert torch.autograd.gradcheck(
        lambda u: multi_resolution_mel_loss(u, a, ((16, 4, 5),)), (b,), eps=1e-6, atol=1e-6, rtol=1e-4
    )


def test_bf16_autocast_runs_stft_in_float32(ecgs):
    x = torch.from_numpy(ecgs)
    y = x + 0.05
    plain = multi_resolution_mel_loss(y, x)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert mel_magnitude(x, 256, 64, 128).dtype == torch.float32
        inside = multi_resolution_mel_loss(y, x)
        # bf16 inputs (e.g. a model output under autocast) are cast up, not computed in bf16
        from_bf16 = multi_resolution_mel_loss(y.bfloat16(), x)
    assert inside.dtype == torch.float32 and inside.item() == plain.item()
    assert from_bf16.dtype == torch.float32
    assert from_bf16.item() == multi_resolution_mel_loss(y.bfloat16().float(), x).item()


def test_module_and_cache(ecgs):
    x = torch.from_numpy(ecgs)
    module = MelSpectrogramLoss()
    assert len(module.state_dict()) == 0 and len(list(module.parameters())) == 0
    assert module(x + 0.1, x).item() == multi_resolution_mel_loss(x + 0.1, x).item()
    assert MelSpectrogramLoss("small").scales == SMALL_SCALES
    # window and filterbank are built once per (parameters, device, dtype)
    w1 = mel_module._cached_window(512, torch.device("cpu"), torch.float32)
    assert mel_module._cached_window(512, torch.device("cpu"), torch.float32) is w1
    torch.testing.assert_close(w1, torch.hann_window(512))
    before = mel_module._cached_filterbank.cache_info().hits
    multi_resolution_mel_loss(x + 0.1, x)
    assert mel_module._cached_filterbank.cache_info().hits >= before + 2
    with pytest.raises(ValueError):
        MelSpectrogramLoss("huge")
