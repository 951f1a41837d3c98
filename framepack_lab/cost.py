"""What a section costs as the video grows: packed context vs an unpacked full-history baseline.

Eq. 3 says the packed context, and so the cost per section, is bounded whatever the video
length; a plain DiT that attends to every known frame grows linearly in tokens (and
quadratically in attention). :func:`section_costs` measures it on the reader's hardware: it
runs a vanilla plan section by section, packed and unpacked, after a warm-up run of each, and
repeats both (interleaved, so background load hits them alike); each section's figure is the
median over the repeats. :func:`fit_cost` fits time against tokens (``a + b n + c n^2``) and
:func:`describe_costs` words what the measurement says, from the numbers.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass, field

import numpy as np
import torch

from .generate import MAX_STEP_FRAMES, generate
from .plan import DEFAULT_SCHEDULES, vanilla
from .schedule import parse

DEFAULT_REPEATS = 3  # timed runs per schedule after the warm-up; each section's figure is their median


def unpacked_schedule(n_frames: int, generated: int = 4) -> str:
    """A schedule that keeps every known frame at the base kernel: the plain-DiT baseline."""
    return f"td_f{n_frames}k1_g{generated}"


def max_sections(schedule: str = DEFAULT_SCHEDULES["vanilla"]) -> int:
    """The most sections :func:`section_costs` can time with ``schedule``: the unpacked baseline's
    last step sees every frame, ``1 + n_sections * S`` frames at ``L_f`` tokens each (``S``: the
    schedule's section), and :func:`~framepack_lab.generate.generate` refuses a step over
    ``MAX_STEP_FRAMES`` frames' worth."""
    return (MAX_STEP_FRAMES - 1) // parse(schedule).generated


def _rss_bytes() -> int:
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except OSError:  # not Linux: fall back to the peak so far (monotonic)
        import resource

        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


class _PeakMemory:
    """Samples resident memory on a thread (CPU) or reads CUDA's peak counter."""

    def __init__(self, device: torch.device):
        self.cuda = device.type == "cuda"

    def __enter__(self):
        if self.cuda:
            torch.cuda.reset_peak_memory_stats()
            self.base = torch.cuda.memory_allocated()
            return self
        self.base = self.peak = _rss_bytes()
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def _sample(self):
        while not self._done.wait(0.002):
            self.peak = max(self.peak, _rss_bytes())

    def __exit__(self, *exc):
        if self.cuda:
            self.peak = torch.cuda.max_memory_allocated()
        else:
            self._done.set()
            self._thread.join()
            self.peak = max(self.peak, _rss_bytes())

    @property
    def extra_mb(self) -> float:
        return max(0, self.peak - self.base) / 2**20


@dataclass
class SectionCost:
    """Per-section figures of one schedule, as the history grows.

    Attributes:
        label: ``"packed"`` or ``"unpacked"``.
        history: known frames before each section.
        tokens: context + section tokens of each step.
        seconds: each section's wall time, the median over the repeats.
        peak_mb: resident memory above the level before the section (CPU: sampled every 2 ms;
            CUDA: the allocator's peak), the median over the repeats. For the tiny model on a CPU
            this is well under 1 MB, below what the sampling resolves: :mod:`benchmarks.bench`
            reports it, the notebook's figure leaves it out.
        runs: every repeat's per-section seconds, ``(repeats, sections)`` as nested lists.
    """

    label: str
    history: list[int]
    tokens: list[int]
    seconds: list[float]
    peak_mb: list[float]
    runs: list[list[float]] = field(default_factory=list)

    @property
    def ratio(self) -> float:
        """Last section's time over the first section's."""
        return self.seconds[-1] / self.seconds[0]

    @property
    def spread(self) -> tuple[list[float], list[float]]:
        """Per-section fastest and slowest repeat ``(lo, hi)`` (the median itself when there are no runs)."""
        if not self.runs:
            return list(self.seconds), list(self.seconds)
        r = np.asarray(self.runs, dtype=float)
        return r.min(axis=0).tolist(), r.max(axis=0).tolist()


def _whole(name: str, value, lo: int, hi: int | None = None, hint: str = "") -> None:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < lo or (hi is not None and value > hi):
        span = f"from {lo} to {hi}" if hi is not None else f"of at least {lo}"
        raise ValueError(f"{name} must be a whole number {span}, got {value!r}{hint}")


def section_costs(backend, first_frame, n_sections: int = 8, schedule: str = DEFAULT_SCHEDULES["vanilla"],
                  steps: int = 4, seed: int = 0, repeats: int = DEFAULT_REPEATS) -> dict[str, SectionCost]:
    """Time every section of a vanilla video, packed (``schedule``) and unpacked (all history at k1).

    Each schedule first runs the whole video once untimed (warm-up: allocator, kernels, caches at
    every size the timed runs meet); then ``repeats`` timed runs of each, packed and unpacked
    alternating, and each section's figures are the median over them.

    Args:
        backend: a generation backend (e.g. ``load_tiny()``).
        first_frame: ``(H, W, 3)`` image.
        n_sections: sections per video; the history grows by one section each step. At most
            :func:`max_sections` (the unpacked baseline grows past generate's token budget).
        schedule: the packed schedule.
        steps: sampler steps per section (the cost per step is what matters; few are enough).
        seed: the generation seed (the same for every run).
        repeats: timed runs per schedule (at least 1; 3 or more make the median robust).

    Returns:
        ``{"packed": SectionCost, "unpacked": SectionCost}``.
    """
    S, limit = parse(schedule).generated, max_sections(schedule)
    _whole("n_sections", n_sections, 1, limit,
           f" for sections of {S} frames: the unpacked baseline's last step sees every frame, and generate "
           f"refuses a step over MAX_STEP_FRAMES = {MAX_STEP_FRAMES} frames' worth of tokens; use "
           f"n_sections={limit} or fewer")
    _whole("repeats", repeats, 1, None, " (timed runs per schedule; the figures are their median)")
    _whole("steps", steps, 1, None, " (sampler steps per section)")
    n_frames = 1 + n_sections * S
    h, w = backend.latent_size(*np.asarray(first_frame).shape[:2])
    device = getattr(backend, "device", torch.device("cpu"))
    names = {"packed": schedule, "unpacked": unpacked_schedule(n_frames, S)}
    plans = {label: vanilla(n_frames, name) for label, name in names.items()}

    def timed(plan):
        peaks: list[float] = []
        meter: list[_PeakMemory] = []

        def start_meter(step) -> None:  # generate calls this just before each section
            meter.append(_PeakMemory(device).__enter__())

        def stop_meter(event) -> None:  # and this just after it lands
            meter[-1].__exit__(None, None, None)
            peaks.append(meter[-1].extra_mb)

        result = generate(backend, first_frame, plan=plan, steps=steps, seed=seed,
                          before_section=start_meter, callback=stop_meter)
        return list(result.section_seconds), peaks

    for plan in plans.values():  # warm-up: the whole video, every size the timed runs meet
        generate(backend, first_frame, plan=plan, steps=1, seed=seed)
    seconds = {label: [] for label in plans}
    peaks = {label: [] for label in plans}
    for _ in range(repeats):  # interleaved, so a burst of background load hits both alike
        for label, plan in plans.items():
            s, p = timed(plan)
            seconds[label].append(s)
            peaks[label].append(p)
    out = {}
    for label, plan in plans.items():
        out[label] = SectionCost(label, [s.index * S + 1 for s in plan.steps], plan.tokens_per_step(h, w),
                                 np.median(seconds[label], axis=0).tolist(), np.median(peaks[label], axis=0).tolist(),
                                 seconds[label])
    return out


@dataclass(frozen=True)
class CostFit:
    """Seconds per section against tokens per step: ``t(n) = a + b n + c n^2``.

    ``a`` is the fixed cost of a section (seconds), ``b`` the linear cost per token (projections,
    MLPs), ``c`` the quadratic one (attention: every token against every token).
    """

    a: float
    b: float
    c: float

    def __call__(self, tokens) -> np.ndarray:
        n = np.asarray(tokens, dtype=float)
        return self.a + self.b * n + self.c * n ** 2

    def per_1k(self, tokens: float) -> float:
        """Marginal seconds per 1,000 more tokens at ``tokens`` (the fit's slope there)."""
        return 1000 * (self.b + 2 * self.c * tokens)


def fit_cost(costs: dict[str, SectionCost]) -> CostFit:
    """Least-squares fit of seconds against tokens over every section of every schedule in ``costs``.

    The quadratic coefficient is kept at or above 0 (attention cannot get cheaper per token as
    tokens grow; a negative value is timing noise): if the free fit gives ``c < 0`` the fit is
    redone as a line. Needs at least 3 distinct token counts.
    """
    n = np.concatenate([np.asarray(c.tokens, dtype=float) for c in costs.values()])
    t = np.concatenate([np.asarray(c.seconds, dtype=float) for c in costs.values()])
    if len(np.unique(n)) < 3:
        raise ValueError(f"fit_cost needs sections of at least 3 different token counts, got {sorted(set(n.tolist()))}; "
                         "time more sections (n_sections) so the unpacked history grows")
    c2, c1, c0 = np.polyfit(n, t, 2)
    if c2 < 0:
        c2, (c1, c0) = 0.0, np.polyfit(n, t, 1)
    return CostFit(float(c0), float(c1), float(c2))


def describe_costs(costs: dict[str, SectionCost], fit: CostFit | None = None) -> str:
    """What the measurement says, worded from its numbers: how each schedule's section time moved
    from the first section to the last, the fit's cost per 1k tokens, and packed against unpacked
    at the longest history."""
    fit = fit or fit_cost(costs)
    pk, up = costs["packed"], costs["unpacked"]

    def trend(c: SectionCost) -> str:
        r = c.ratio
        how = "stayed flat" if 0.8 <= r <= 1.25 else ("grew" if r > 1 else "fell")
        text = (f"{c.label}: {c.seconds[0] * 1e3:.0f} ms for the first section ({c.tokens[0]:,} tokens), "
                f"{c.seconds[-1] * 1e3:.0f} ms for the last ({c.tokens[-1]:,} tokens), so it {how} ({r:.2f}x, "
                f"tokens {c.tokens[-1] / c.tokens[0]:.2f}x)")
        full = next(i for i in range(len(c.tokens)) if all(n == c.tokens[-1] for n in c.tokens[i:]))
        if len(c.tokens) - full >= 3:  # a plateau of at least 3 sections: the bounded part of Eq. 3
            flat = c.seconds[full:]
            text += (f"; from {c.history[full]} known frames on its tokens stopped growing and its time stayed "
                     f"between {min(flat) * 1e3:.0f} and {max(flat) * 1e3:.0f} ms")
        return text

    quad = fit.c * max(up.tokens) ** 2
    lin = fit.b * max(up.tokens)
    share = quad / (quad + lin) if quad + lin > 0 else 0.0
    speed = up.seconds[-1] / pk.seconds[-1]
    lines = [
        f"Median over the repeats, {len(pk.seconds)} sections; {trend(pk)}; {trend(up)}.",
        f"Fitted over every section of both runs: t(n) = {fit.a * 1e3:.1f} ms + {fit.b * 1e6:.2f} ms x (n / 1k tokens)"
        + (f" + a quadratic term that is {share:.0%} of the token-dependent cost at {max(up.tokens):,} tokens"
           if fit.c > 0 else " (no quadratic term resolved: attention is a small share at these sizes)")
        + f"; one more 1k tokens costs {fit.per_1k(min(pk.tokens)) * 1e3:.1f} ms at {min(pk.tokens):,} tokens "
          f"and {fit.per_1k(max(up.tokens)) * 1e3:.1f} ms at {max(up.tokens):,}.",
        f"At the longest history ({up.history[-1]} known frames) the unpacked section took {speed:.1f}x the packed "
        f"one ({up.seconds[-1] * 1e3:.0f} ms vs {pk.seconds[-1] * 1e3:.0f} ms, {up.tokens[-1] / pk.tokens[-1]:.1f}x "
        f"the tokens)" + (": packing pays off." if speed > 1.1 else
                          ": at this size packing does not yet save time (fixed costs dominate).")
    ]
    return "\n".join(lines)
