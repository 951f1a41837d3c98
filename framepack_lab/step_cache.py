"""Step caching: skip transformer evaluations whose input barely changed (TeaCache's rule).

The official FramePack demo runs TeaCache (Liu et al. 2024, arXiv 2411.19108) by default: a
relative-L1 threshold of 0.1 for about 1.6x, 0.15 for about 2.1x; lossy, meant for drafts.
``generate(backend, first_frame, cache=0.15)`` offers the same rule for any backend that lists
:data:`~framepack_lab.backend.STEP_CACHE`. Per model evaluation ``i`` of one section's sampler
trajectory:

1. probe the timestep-modulated input of the first transformer block,
   ``F_i = LN(x) (1 + scale(t_i)) + shift(t_i)``, over every token of the step (context and noisy,
   as the official demo does);
2. measure its relative L1 change since the previous evaluation,
   ``d_i = mean|F_i - F_{i-1}| / mean|F_{i-1}|``;
3. accumulate it since the last evaluation that was really computed, ``A = sum of d``; while
   ``A < threshold`` skip the whole block stack and reuse its last residual
   ``x_out = x_in + r``, ``r = (x_out - x_in)`` of the last computed evaluation; when
   ``A >= threshold`` compute the stack, store its residual and reset ``A = 0``;
4. always compute the first and the last evaluation of a section.

**No rescaling polynomial.** The official demo maps ``d_i`` through a polynomial fitted to
HunyuanVideo (input change -> output change) before accumulating. The tiny model has no fitted
polynomial, so here ``A`` is the plain accumulated relative L1: the same threshold skips a
different share of evaluations than in the demo. ``make bench`` measures what 0.1 and 0.15 do on
the tiny model (speed-up, evaluations skipped, presence and drift).

**Per section, per video.** The runner makes a fresh :class:`StepCache` for every section (a new
context; and one for each context of a section, e.g. history guidance's history-free branch),
so nothing carries over between sections. Each video of a batch keeps its own accumulator and
decision (the block stack runs on the rows that need it), so video ``i`` of a batch is the video
its seed makes alone, as without the cache. HunyuanVideo uses diffusers' own hook instead
(:mod:`framepack_lab.models.hunyuan.cache`), with a batch-wide decision.

``cache=None`` or ``0`` is the plain path, bit for bit.
"""

from __future__ import annotations

import math
from numbers import Real
from typing import Any, Callable

import torch

from .backend import check_features
from .sampler import model_calls

OFFICIAL_THRESHOLDS = (0.1, 0.15)  # the official demo's settings ("1.6x" and "2.1x" there)


def check_cache(cache) -> float:
    """The threshold ``generate(cache=...)`` asked for: ``None`` -> 0.0 (off).

    Raises:
        ValueError: for anything but a finite number in [0, 1) (a bool is refused too).
    """
    if cache is None:
        return 0.0
    if isinstance(cache, bool) or not isinstance(cache, Real) or not math.isfinite(cache) or not 0 <= cache < 1:
        raise ValueError(f"cache must be a step-cache threshold in [0, 1) or None, got {cache!r}: the accumulated "
                         f"relative L1 change of the model input under which an evaluation is skipped (the "
                         f"official demo uses {OFFICIAL_THRESHOLDS[0]} or {OFFICIAL_THRESHOLDS[1]}; None or 0 "
                         "switches caching off)")
    return float(cache)


class StepCache:
    """TeaCache state of one section's sampler trajectory for a batch of ``batch`` videos.

    A backend calls :meth:`run` (it owns the block stack) or, when another library decides, just
    :meth:`record` once per model evaluation.

    Attributes:
        threshold: the accumulated relative L1 under which an evaluation is skipped.
        n_calls: model evaluations the sampler makes in the section
            (:func:`framepack_lab.sampler.model_calls`); the first and the last are computed.
        calls: evaluations so far.
        computed, skipped: ``(batch,)`` int64 counts per video.
        decisions: one ``(batch,)`` bool per evaluation, True where it was computed.
    """

    def __init__(self, threshold: float, n_calls: int, batch: int):
        if not (isinstance(threshold, Real) and math.isfinite(threshold) and 0 <= threshold < 1):
            raise ValueError(f"threshold must be in [0, 1), got {threshold!r}")
        if not (isinstance(n_calls, int) and n_calls >= 1 and isinstance(batch, int) and batch >= 1):
            raise ValueError(f"n_calls and batch must be positive integers, got {n_calls!r} and {batch!r}")
        self.threshold, self.n_calls, self.batch = float(threshold), n_calls, batch
        self.calls = 0
        self.accumulated = torch.zeros(batch, dtype=torch.float64)
        self.computed = torch.zeros(batch, dtype=torch.int64)
        self.skipped = torch.zeros(batch, dtype=torch.int64)
        self.decisions: list[torch.Tensor] = []
        self._previous: torch.Tensor | None = None  # probe of the previous evaluation
        self._residual: torch.Tensor | None = None  # block-stack residual of the last computed one

    @property
    def forced(self) -> bool:
        """True when the next evaluation must be computed: the section's first or last."""
        return self.calls == 0 or self.calls >= self.n_calls - 1

    def record(self, compute) -> torch.Tensor:
        """Count one evaluation; ``compute`` is a bool or a ``(batch,)`` bool tensor. Returns it as
        a ``(batch,)`` CPU bool tensor."""
        compute = torch.as_tensor(compute, dtype=torch.bool).cpu().expand(self.batch).clone()
        self.computed += compute
        self.skipped += ~compute
        self.decisions.append(compute)
        self.calls += 1
        return compute

    def decide(self, probe: torch.Tensor) -> torch.Tensor:
        """TeaCache's decision for the next evaluation from its ``probe (batch, ...)`` (the first
        block's modulated input); returns ``(batch,)`` bool, True = compute. Records it."""
        if probe.shape[0] != self.batch:
            raise ValueError(f"this step cache was made for a batch of {self.batch}, got a probe of {probe.shape[0]}")
        probe = probe.detach()
        if self.forced or self._previous is None or self._previous.shape != probe.shape:
            compute = torch.ones(self.batch, dtype=torch.bool)
        else:
            dims = tuple(range(1, probe.ndim))
            prev = self._previous
            # TeaCache: relative L1 change of the modulated input, d = |F_i - F_{i-1}|_1 / |F_{i-1}|_1
            d = (probe - prev).abs().mean(dims) / prev.abs().mean(dims).clamp_min(1e-12)
            self.accumulated += d.double().cpu()  # A = sum of d since the last computed evaluation
            compute = self.accumulated >= self.threshold
        self.accumulated[compute] = 0.0
        self._previous = probe
        return self.record(compute)

    def run(self, x: torch.Tensor, probe: torch.Tensor,
            stack: Callable[[torch.Tensor, torch.Tensor | None], torch.Tensor]) -> torch.Tensor:
        """One evaluation of a block stack with caching.

        Args:
            x: the stack's input tokens ``(B, N, D)``.
            probe: the first block's modulated input ``(B, ...)`` (see :meth:`decide`).
            stack: ``stack(x_rows, rows)`` runs the blocks on ``x_rows (B', N, D)``, the batch rows
                ``rows`` (a ``(B',)`` index tensor, or ``None`` for the whole batch).

        Returns:
            The stack's output ``(B, N, D)``: computed rows exactly as ``stack`` gives them, skipped
            rows ``x + r`` with the residual ``r`` of their last computed evaluation.
        """
        compute = self.decide(probe)
        if bool(compute.all()) or self._residual is None or self._residual.shape != x.shape:
            out = stack(x, None)
            self._residual = out - x
            return out
        out = x + self._residual
        if bool(compute.any()):
            rows = compute.nonzero().squeeze(1).to(x.device)
            fresh = stack(x[rows], rows)
            out[rows] = fresh
            self._residual[rows] = fresh - x[rows]
        return out


class CacheLedger:
    """Step caching over one ``generate`` call: a fresh :class:`StepCache` for each prepared
    context (so the state resets at every section), and per-video totals for the result.

    ``threshold`` 0 is off: :meth:`prepare` is then exactly ``backend.prepare_section(context)``.
    """

    def __init__(self, threshold: float, n_calls: int, batch: int):
        self.threshold, self.n_calls, self.batch = float(threshold), n_calls, batch
        self.caches: list[StepCache] = []

    @classmethod
    def start(cls, backend, cache, steps: int, sampler: str, batch: int) -> "CacheLedger":
        """Validate ``generate``'s ``cache`` against the backend (before any work) and start a ledger.

        Raises:
            ValueError: a threshold outside [0, 1), or a threshold > 0 for a backend without
                :data:`~framepack_lab.backend.STEP_CACHE`.
        """
        threshold = check_cache(cache)
        check_features(backend, step_cache=threshold > 0)
        return cls(threshold, model_calls(steps, sampler) if threshold > 0 else 1, batch)

    @property
    def on(self) -> bool:
        return self.threshold > 0

    def prepare(self, backend, context) -> Any:
        """``backend.prepare_section(context)``, with a new :class:`StepCache` when caching is on."""
        if not self.on:
            return backend.prepare_section(context)
        cache = StepCache(self.threshold, self.n_calls, self.batch)
        self.caches.append(cache)
        return backend.prepare_section(context, step_cache=cache)

    def report(self, b: int) -> dict:
        """What the result's ``info`` gains for video ``b``: ``{"cache": {"threshold", "computed",
        "skipped"}}`` (model evaluations), or nothing when caching is off."""
        if not self.on:
            return {}
        return {"cache": {"threshold": self.threshold,
                          "computed": int(sum(int(c.computed[b]) for c in self.caches)),
                          "skipped": int(sum(int(c.skipped[b]) for c in self.caches))}}
