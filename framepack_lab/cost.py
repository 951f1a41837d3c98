"""What a section costs as the video grows: packed context vs an unpacked full-history baseline.

Eq. 3 says the packed context, and so the cost per section, is bounded whatever the video
length; a plain DiT that attends to every known frame grows linearly in tokens (and
quadratically in attention). :func:`section_costs` measures it on the reader's hardware: it
runs a vanilla plan section by section and records each section's wall time, token count and
peak resident memory above the pre-section level.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass

import numpy as np
import torch

from .generate import MAX_STEP_FRAMES, generate
from .plan import DEFAULT_SCHEDULES, vanilla
from .schedule import parse


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
    """Per-section figures of one run: ``seconds``, ``tokens``, ``peak_mb`` (memory above the
    level before the section), ``history`` (known frames before the section)."""

    label: str
    history: list[int]
    tokens: list[int]
    seconds: list[float]
    peak_mb: list[float]

    @property
    def ratio(self) -> float:
        """Last section's time over the first section's."""
        return self.seconds[-1] / self.seconds[0]


def section_costs(backend, first_frame, n_sections: int = 8, schedule: str = DEFAULT_SCHEDULES["vanilla"],
                  steps: int = 4, seed: int = 0) -> dict[str, SectionCost]:
    """Time every section of a vanilla video, packed (``schedule``) and unpacked (all history at k1).

    Args:
        backend: a generation backend (e.g. ``load_tiny()``).
        first_frame: ``(H, W, 3)`` image.
        n_sections: sections per video; the history grows by one section each step. At most
            :func:`max_sections` (the unpacked baseline grows past generate's token budget).
        schedule: the packed schedule.
        steps: sampler steps per section (the cost per step is what matters; few are enough).

    Returns:
        ``{"packed": SectionCost, "unpacked": SectionCost}``.
    """
    S, limit = parse(schedule).generated, max_sections(schedule)
    if isinstance(n_sections, bool) or not isinstance(n_sections, int) or not 1 <= n_sections <= limit:
        raise ValueError(f"n_sections must be a whole number from 1 to {limit} for sections of {S} frames, got "
                         f"{n_sections!r}: the unpacked baseline's last step sees every frame, and generate refuses "
                         f"a step over MAX_STEP_FRAMES = {MAX_STEP_FRAMES} frames' worth of tokens; use "
                         f"n_sections={limit} or fewer")
    n_frames = 1 + n_sections * S
    h, w = backend.latent_size(*np.asarray(first_frame).shape[:2])
    device = getattr(backend, "device", torch.device("cpu"))
    out = {}
    for label, name in (("packed", schedule), ("unpacked", unpacked_schedule(n_frames, S))):
        plan = vanilla(n_frames, name)
        generate(backend, first_frame, plan=vanilla(1 + S, name), steps=1)  # warm-up
        peaks: list[float] = []
        meter: list[_PeakMemory] = []

        def start_meter(step) -> None:  # generate calls this just before each section
            meter.append(_PeakMemory(device).__enter__())

        def stop_meter(event) -> None:  # and this just after it lands
            meter[-1].__exit__(None, None, None)
            peaks.append(meter[-1].extra_mb)

        result = generate(backend, first_frame, plan=plan, steps=steps, seed=seed,
                          before_section=start_meter, callback=stop_meter)
        out[label] = SectionCost(label, [s.index * S + 1 for s in plan.steps], plan.tokens_per_step(h, w),
                                 result.section_seconds, peaks)
    return out
