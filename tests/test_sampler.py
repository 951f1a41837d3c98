"""Flow-matching sampling: sigma schedules, the dynamic shift, and Euler / Heun integration."""

import math

import pytest
import torch

from framepack_lab.sampler import SAMPLERS, dynamic_shift, sample, sigmas, time_shift


@pytest.mark.parametrize("n", [1, 2, 7, 50])
@pytest.mark.parametrize("shift", [1.0, 0.5, 3.0, 7.0])
def test_sigmas_decrease_from_one_to_zero(n, shift):
    s = sigmas(n, shift)
    assert s.shape == (n + 1,)
    assert s[0].item() == pytest.approx(1.0, abs=1e-6) and s[-1].item() == pytest.approx(0.0, abs=1e-7)
    assert (s[1:] < s[:-1]).all()


def test_shift_one_is_linspace_and_bigger_shift_stays_noisier():
    torch.testing.assert_close(sigmas(10, 1.0), torch.linspace(1, 0, 11))
    lin, shifted = sigmas(10, 1.0), sigmas(10, 3.0)
    assert (shifted[1:-1] > lin[1:-1]).all()
    # time_shift formula at a point: 3 * 0.5 / (1 + 2 * 0.5) = 0.75
    assert time_shift(torch.tensor(0.5), 3.0).item() == pytest.approx(0.75)


def test_dynamic_shift_official_points():
    assert dynamic_shift(256) == pytest.approx(math.e ** 0.5)
    assert dynamic_shift(4096) == pytest.approx(math.e ** 1.15)
    assert dynamic_shift(10**7) == pytest.approx(7.0)
    assert dynamic_shift(256) < dynamic_shift(1024) < dynamic_shift(4096)  # monotone in tokens


def test_dynamic_shift_takes_a_schedulers_line():
    """The defaults are the official line; other points move it (a scheduler config's values)."""
    for n in (100, 256, 1000, 4096, 14040):
        assert dynamic_shift(n) == dynamic_shift(n, base_len=256, max_len=4096, base_shift=0.5, max_shift=1.15)
    line = dict(base_len=128, max_len=2048, base_shift=0.3, max_shift=1.0)
    assert dynamic_shift(128, **line) == pytest.approx(math.e ** 0.3)
    assert dynamic_shift(2048, **line) == pytest.approx(math.e ** 1.0)
    assert dynamic_shift(10**7, **line) == pytest.approx(7.0)  # still capped at ln 7
    with pytest.raises(ValueError, match="max_len != base_len"):
        dynamic_shift(100, base_len=256, max_len=256)


@pytest.mark.parametrize("method", SAMPLERS)
def test_constant_velocity_is_integrated_exactly(method):
    g = torch.Generator().manual_seed(0)
    noise = torch.randn(2, 3, 4, 4, 4, generator=g)
    c = torch.randn(2, 3, 4, 4, 4, generator=g)
    out = sample(lambda x, s: c, noise, sigmas(5, 3.0), method)
    torch.testing.assert_close(out, noise - c, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("method", SAMPLERS)
@pytest.mark.parametrize("shift", [1.0, 3.0])
def test_true_flow_velocity_recovers_x0(method, shift):
    """With the exact velocity of a single target, v = (x - x0) / sigma, sampling lands on x0."""
    g = torch.Generator().manual_seed(1)
    x0 = torch.randn(1, 4, 2, 4, 4, generator=g)
    noise = torch.randn(1, 4, 2, 4, 4, generator=g)
    out = sample(lambda x, s: (x - x0) / s.view(-1, 1, 1, 1, 1), noise, sigmas(4, shift), method)
    torch.testing.assert_close(out, x0, atol=1e-5, rtol=1e-5)


def test_heun_is_exact_for_linear_in_sigma_velocity_and_euler_is_not():
    """dx/dsigma = a + b sigma. Heun (trapezoid) integrates a velocity that is linear in sigma
    exactly on every step but the last, which is an Euler step (the model is never evaluated at
    sigma = 0, as in k-diffusion's Heun); Euler (left rectangle) is off on every step."""
    g = torch.Generator().manual_seed(2)
    a, b = torch.randn(1, 2, 1, 2, 2, generator=g), torch.randn(1, 2, 1, 2, 2, generator=g)
    noise = torch.randn(1, 2, 1, 2, 2, generator=g)

    def v(x, s):
        return a + b * s.view(-1, 1, 1, 1, 1)

    sched = sigmas(4, 2.0)
    last = sched[-2].item()
    # exact from 1 down to `last`, then one Euler step from `last` to 0
    heun_expected = noise - (a * (1 - last) + b * (1 - last**2) / 2) - last * (a + b * last)
    torch.testing.assert_close(sample(v, noise, sched, "heun"), heun_expected, atol=1e-5, rtol=1e-5)
    # with a velocity that is constant on the last interval, Heun is exact overall
    exact_until = noise - (a * (1 - last) + b * (1 - last**2) / 2)
    v_clamped = lambda x, s: a + b * s.clamp_min(last).view(-1, 1, 1, 1, 1)  # noqa: E731
    exact = exact_until - last * (a + b * last)
    torch.testing.assert_close(sample(v_clamped, noise, sched, "heun"), exact, atol=1e-5, rtol=1e-5)
    euler = sample(v_clamped, noise, sched, "euler")
    assert (euler - exact).abs().max() > 1e-2
    # Euler's error is exactly the left-rectangle error of the b * sigma term
    ds = sched[:-1] - sched[1:]
    left = (ds * sched[:-1]).sum()
    torch.testing.assert_close(sample(v, noise, sched, "euler"), noise - a - b * left, atol=1e-5, rtol=1e-5)
    # and Heun is closer to the true ODE solution than Euler
    true = noise - a - b / 2
    assert (sample(v, noise, sched, "heun") - true).abs().max() < (sample(v, noise, sched, "euler") - true).abs().max()


def test_model_calls_sigmas_and_progress():
    seen = []

    def v(x, s):
        assert s.shape == (3,)
        seen.append(round(s[0].item(), 6))
        return torch.zeros_like(x)

    sched = sigmas(4)
    calls = []
    sample(v, torch.zeros(3, 1, 1, 2, 2), sched, "euler", on_step=lambda i, n: calls.append((i, n)))
    assert seen == [round(x, 6) for x in sched[:-1].tolist()]
    assert calls == [(1, 4), (2, 4), (3, 4), (4, 4)]
    seen.clear()
    sample(v, torch.zeros(3, 1, 1, 2, 2), sched, "heun")
    assert len(seen) == 2 * 4 - 1  # two calls a step, one for the last (sigma' = 0)
    assert 0.0 not in seen  # never evaluates the model at sigma = 0


@pytest.mark.parametrize("bad", [0, -3, 2.5, "4", None])
def test_bad_steps_raise(bad):
    with pytest.raises(ValueError, match="steps"):
        sigmas(bad)


@pytest.mark.parametrize("bad", [0.0, -1.0])
def test_bad_shift_raises(bad):
    with pytest.raises(ValueError, match="shift"):
        sigmas(4, bad)


def test_unknown_method_raises():
    with pytest.raises(ValueError, match="rk4"):
        sample(lambda x, s: x, torch.zeros(1, 1, 1, 2, 2), sigmas(2), "rk4")
