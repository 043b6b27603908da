"""training_loss: the epsilon objective, MIDT and its ablations."""

import json

import pytest
import torch
import torch.nn.functional as F

from midtecg.diffusion import NoiseSchedule, Parameterization
from midtecg.losses import ObjectiveConfig, multi_resolution_mel_loss, training_loss

SCHEDULE = NoiseSchedule()


@pytest.fixture(scope="module")
def batch():
    g = torch.Generator().manual_seed(0)
    t_axis = torch.arange(1000) / 100.0
    x0 = 0.3 * torch.sin(2 * torch.pi * 1.2 * t_axis) + 0.1 * torch.randn(4, 8, 1000, generator=g)
    noise = torch.randn(4, 8, 1000, generator=g)
    t = torch.tensor([0, 20, 110, 199])
    x_t = SCHEDULE.add_noise(x0, noise, t)
    eps_hat = noise + 0.3 * torch.randn(4, 8, 1000, generator=g)
    return eps_hat, noise, x_t, x0, t


def test_eps_objective_is_mse(batch):
    eps_hat, noise, x_t, x0, t = batch
    loss, parts = training_loss(eps_hat, noise, x_t, x0, t, SCHEDULE, ObjectiveConfig())
    assert loss.item() == F.mse_loss(eps_hat, noise).item()
    assert set(parts) == {"mse", "loss"} and not parts["loss"].requires_grad
    assert parts["mse"].item() == loss.item()
    # default objective is eps
    assert training_loss(eps_hat, noise, x_t, x0, t, SCHEDULE)[0].item() == loss.item()


def test_midt_is_manual_composition(batch):
    eps_hat, noise, x_t, x0, t = batch
    ab = SCHEDULE.alpha_bars.float()[t].view(-1, 1, 1)
    x0_hat = (x_t - (1 - ab).sqrt() * eps_hat) / ab.sqrt()
    mse = F.mse_loss(eps_hat, noise)

    loss, parts = training_loss(eps_hat, noise, x_t, x0, t, SCHEDULE, ObjectiveConfig(kind="midt"))
    mel = multi_resolution_mel_loss(x0_hat, x0, "paper")
    assert loss.item() == pytest.approx((mse + 0.02 * mel).item(), rel=1e-6)
    assert parts["mel"].item() == pytest.approx(mel.item(), rel=1e-6) and set(parts) == {"mse", "mel", "loss"}

    cfg = ObjectiveConfig(kind="midt", mel_target="posterior_mean", mel_weight=0.2)
    loss, parts = training_loss(eps_hat, noise, x_t, x0, t, SCHEDULE, cfg)
    c0 = SCHEDULE.table("posterior_mean_coef_x0")[t].view(-1, 1, 1)
    ct = SCHEDULE.table("posterior_mean_coef_xt")[t].view(-1, 1, 1)
    mel = multi_resolution_mel_loss(c0 * x0_hat + ct * x_t, c0 * x0 + ct * x_t, "paper")
    # float32 rounding of x0_hat (sqrt tables vs sqrt in float32) is amplified by the cancellation in
    # mu~(x0_hat) - mu~(x0) where coef_xt * x_t dominates: agree to 1e-4 rather than 1e-6
    assert loss.item() == pytest.approx((mse + 0.2 * mel).item(), rel=1e-4)


def test_variants_run_and_differ(batch):
    eps_hat, noise, x_t, x0, t = batch
    configs = [
        ObjectiveConfig(),
        ObjectiveConfig(kind="midt"),
        ObjectiveConfig(kind="midt", mel_weight=0.2),
        ObjectiveConfig(kind="midt", mel_target="posterior_mean"),
        ObjectiveConfig(kind="midt", mel_scales="small"),
    ]
    values = [training_loss(eps_hat, noise, x_t, x0, t, SCHEDULE, c)[0].item() for c in configs]
    assert len(set(values)) == len(values)
    assert all(v > values[0] for v in values[1:])  # the mel term is positive


def test_gradients_flow_through_eps_hat(batch):
    _, noise, x_t, x0, t = batch
    grads = {}
    for kind in ("eps", "midt"):
        eps_hat = batch[0].clone().requires_grad_(True)
        loss, _ = training_loss(eps_hat, noise, x_t, x0, t, SCHEDULE, ObjectiveConfig(kind=kind))
        loss.backward()
        assert torch.isfinite(eps_hat.grad).all()
        grads[kind] = eps_hat.grad
    assert (grads["midt"] - grads["eps"]).abs().max() > 0


def test_autocast_bf16(batch):
    eps_hat, noise, x_t, x0, t = batch
    cfg = ObjectiveConfig(kind="midt")
    ref, _ = training_loss(eps_hat, noise, x_t, x0, t, SCHEDULE, cfg)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        loss, parts = training_loss(eps_hat.bfloat16(), noise, x_t, x0, t, SCHEDULE, cfg)
    assert loss.dtype == torch.float32 and parts["mel"].dtype == torch.float32
    assert loss.item() == pytest.approx(ref.item(), rel=2e-2)  # bf16 rounding of eps_hat only


def test_config_round_trip_and_validation(batch):
    for cfg in (
        ObjectiveConfig(),
        ObjectiveConfig(kind="midt", mel_weight=0.2, mel_target="posterior_mean", mel_scales="small"),
    ):
        assert ObjectiveConfig.from_dict(json.loads(json.dumps(cfg.to_dict()))) == cfg
    assert ObjectiveConfig().to_dict()["mel_weight"] == 0.02
    for bad in (
        {"kind": "l1"},
        {"mel_target": "x_t"},
        {"mel_scales": "huge"},
        {"mel_weight": -1.0},
        {"mel_log_order": "power"},
    ):
        with pytest.raises(ValueError):
            ObjectiveConfig(**bad)
    with pytest.raises(ValueError):
        ObjectiveConfig.from_dict({"kind": "eps", "lambda": 0.1})
    eps_hat, noise, x_t, x0, t = batch
    with pytest.raises(ValueError):
        training_loss(eps_hat, noise[:, :4], x_t, x0, t, SCHEDULE)


def _noisy(param, seed=1):
    g = torch.Generator().manual_seed(seed)
    t_axis = torch.arange(1000) / 100.0
    x0 = 0.3 * torch.sin(2 * torch.pi * 1.2 * t_axis) + 0.1 * torch.randn(4, 8, 1000, generator=g)
    noise = torch.randn(4, 8, 1000, generator=g)
    t = torch.tensor([0.05, 0.3, 0.6, 1.0]) if param.is_flow else torch.tensor([0, 20, 110, 199])
    x_t = param.add_noise(x0, noise, t)
    out = param.target(x0, noise, t) + 0.3 * torch.randn(4, 8, 1000, generator=g)
    return out, noise, x_t, x0, t


@pytest.mark.parametrize(
    "prediction,schedule", [("v", SCHEDULE), ("v", NoiseSchedule(zero_terminal_snr=True)), ("flow", SCHEDULE)]
)
def test_every_parameterization_mse_on_its_target_and_mel_on_x0_hat(prediction, schedule):
    """MSE against the parameterisation's own target; the mel term on the clean signal the output implies
    (v: x0 = sqrt(ab) x_t - sqrt(1 - ab) v; flow: x0 = x_t - t u), by hand."""
    param = Parameterization(prediction, schedule)
    out, noise, x_t, x0, t = _noisy(param)
    if prediction == "v":
        ab = schedule.alpha_bars.float()[t].view(-1, 1, 1)
        target, x0_hat = ab.sqrt() * noise - (1 - ab).sqrt() * x0, ab.sqrt() * x_t - (1 - ab).sqrt() * out
    else:
        target, x0_hat = noise - x0, x_t - t.view(-1, 1, 1) * out
    loss, parts = training_loss(out, noise, x_t, x0, t, param, ObjectiveConfig(kind="midt"))
    mse = F.mse_loss(out, target)
    assert parts["mse"].item() == pytest.approx(mse.item(), rel=1e-6)
    assert parts["mel"].item() == pytest.approx(multi_resolution_mel_loss(x0_hat, x0).item(), rel=1e-5)
    assert loss.item() == pytest.approx(mse.item() + 0.02 * parts["mel"].item(), rel=1e-6)
    # the perfect output has no loss at all
    perfect, _ = training_loss(param.target(x0, noise, t), noise, x_t, x0, t, param, ObjectiveConfig(kind="midt"))
    assert perfect.item() < 1e-3
    if param.is_flow:
        with pytest.raises(ValueError, match="posterior_mean"):
            training_loss(out, noise, x_t, x0, t, param, ObjectiveConfig(kind="midt", mel_target="posterior_mean"))


def test_eps_prediction_at_zero_terminal_snr_skips_the_mel_term_there():
    """At alpha_bar = 0 an epsilon output says nothing of x0: that sample's mel term is zero (prediction and
    target both 0) and its gradient finite; the loss equals the mel term over the other samples, padded."""
    param = Parameterization("eps", NoiseSchedule(zero_terminal_snr=True))
    out, noise, x_t, x0, t = _noisy(param)
    out = out.requires_grad_(True)
    loss, parts = training_loss(out, noise, x_t, x0, t, param, ObjectiveConfig(kind="midt"))
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(out.grad).all()
    _, x0_hat = param.split(out.detach(), x_t, t)
    pred, target = x0_hat.clone(), x0.clone()
    pred[3], target[3] = 0.0, 0.0
    assert parts["mel"].item() == pytest.approx(multi_resolution_mel_loss(pred, target).item(), rel=1e-5)


def test_mel_term_in_millivolts_with_per_lead_scaling():
    """A network working on x / scale gets the mel term of the signals in mV: the same value as the unscaled
    network with the same (rescaled) prediction."""
    param = Parameterization("v")
    out, noise, x_t, x0, t = _noisy(param)
    scale = torch.linspace(0.1, 0.4, 8)[:, None]
    cfg = ObjectiveConfig(kind="midt")
    _, x0_hat = param.split(out, x_t, t)
    _, parts = training_loss(out, noise, x_t, x0, t, param, cfg, signal_scale=scale)
    assert parts["mel"].item() == pytest.approx(multi_resolution_mel_loss(x0_hat * scale, x0 * scale).item(), rel=1e-5)
    _, plain = training_loss(out, noise, x_t, x0, t, param, cfg)
    assert plain["mse"] == parts["mse"] and abs(plain["mel"].item() - parts["mel"].item()) > 1e-3


def test_mel_log_order_reaches_the_loss(batch):
    eps_hat, noise, x_t, x0, t = batch
    new = training_loss(eps_hat, noise, x_t, x0, t, SCHEDULE, ObjectiveConfig(kind="midt"))[1]["mel"]
    old = training_loss(
        eps_hat, noise, x_t, x0, t, SCHEDULE, ObjectiveConfig(kind="midt", mel_log_order="square_first")
    )[1]["mel"]
    ab = SCHEDULE.alpha_bars.float()[t].view(-1, 1, 1)
    x0_hat = (x_t - (1 - ab).sqrt() * eps_hat) / ab.sqrt()
    assert old.item() == pytest.approx(multi_resolution_mel_loss(x0_hat, x0, log_order="square_first").item(), rel=1e-6)
    assert new.item() != old.item()
