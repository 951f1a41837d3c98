"""Per-section (timestamped) prompts: ``"[0s-2s] a cat walks; [2s-4s] a dog runs"``.

The official demo conditions every section on one prompt; its forks (FramePack-eichi, FramePack
Studio) let each stretch of the video have its own. Here a prompt string that starts with ``[`` is
a list of timed prompts, separated by ``;`` (or new lines), each ``[START-END] text`` with times in
seconds (``2``, ``2s``, ``1.5s``):

* the ranges must start at 0 and tile time without gaps or overlaps (in any written order; they are
  sorted), so every moment has exactly one prompt;
* each section of a plan is conditioned on the prompt whose range holds the section's *middle*
  (:func:`section_seconds`); a section whose middle no range holds is refused before any work;
* refused with a ``ValueError`` that says what to write instead: an empty string, an item without a
  ``[START-END]`` range, unbalanced or stray brackets, times that are not non-negative numbers,
  ``END <= START``, a gap, an overlap, a first range that does not start at 0, and empty text.

Time of a section: plan frames are *latent* frames; HunyuanVideo's causal VAE decodes latent frame
0 to pixel frame 0 and latent frame ``f >= 1`` to the 4 pixel frames ``4f - 3 .. 4f``
(:func:`~.inputs.pixel_frames`), played at :data:`~framepack_lab.media.DEFAULT_FPS` (30, the
official demo's rate). The inverted order generates the end of the video first, so the *last*
range's prompt conditions the first generated section: :func:`section_prompts` returns the prompts in
generation order (the plan's step order).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from ...media import DEFAULT_FPS
from ...plan import Plan, Step
from .inputs import pixel_frames

_ITEM = re.compile(r"\[([^\[\]]*)\](.*)", re.DOTALL)   # "[range] text", no nested brackets in the range
_TIME = re.compile(r"\s*(\d+(?:\.\d*)?|\.\d+)\s*s?\s*")  # 2 | 2s | 1.5s | .5s (seconds)
EXAMPLE = "[0s-2s] a cat walks; [2s-4s] a dog runs"


@dataclass(frozen=True)
class TimedPrompt:
    """One prompt and the stretch of video it covers: ``start_s <= t < end_s`` seconds."""

    start_s: float
    end_s: float
    text: str

    def covers(self, t: float) -> bool:
        return self.start_s <= t < self.end_s


def is_timed(prompt: str) -> bool:
    """True when ``prompt`` is a list of timed prompts (its first non-blank character is ``[``)."""
    return isinstance(prompt, str) and prompt.lstrip().startswith("[")


def _bad(what: str) -> ValueError:
    return ValueError(f"timed prompts: {what}; write them as {EXAMPLE!r} (ranges in seconds from 0, without gaps "
                      "or overlaps, ';' between prompts)")


def _seconds(text: str, item: str) -> float:
    m = _TIME.fullmatch(text)
    if m is None:
        raise _bad(f"{text.strip()!r} in {item!r} is not a time in seconds (a non-negative number such as 2, 2s "
                   "or 1.5s)")
    return float(m.group(1))


def _parse_item(item: str) -> TimedPrompt:
    if item.count("[") != item.count("]") or item.count("[") > 1:
        raise _bad(f"unbalanced or stray brackets in {item!r}: each prompt has exactly one [START-END] range, "
                   "and its text has no brackets")
    m = _ITEM.fullmatch(item)
    if m is None or not item.startswith("["):
        raise _bad(f"{item!r} does not start with a [START-END] range")
    times, text = m.group(1), m.group(2).strip()
    if times.count("-") != 1:
        raise _bad(f"the range [{times}] in {item!r} is not START-END (one '-' between two times)")
    start, end = (_seconds(t, item) for t in times.split("-"))
    if end <= start:
        raise _bad(f"the range [{times}] in {item!r} ends at or before it starts ({end:g} s <= {start:g} s)")
    if not text:
        raise _bad(f"the range [{times}] has no text")
    return TimedPrompt(start, end, text)


def parse_timed_prompts(prompts: str) -> tuple[TimedPrompt, ...]:
    """Parse ``"[0s-2s] a cat; [2s-4s] a dog"`` into :class:`TimedPrompt` spans sorted by time.

    Args:
        prompts: ``;``- or newline-separated items ``[START-END] text``, times in seconds.

    Returns:
        The spans in time order: they start at 0 and each starts where the previous one ends.

    Raises:
        ValueError: for any of the malformed inputs listed in the module docstring, naming the item.

    Example:
        >>> parse_timed_prompts("[2s-4s] a dog; [0-2] a cat")
        (TimedPrompt(start_s=0.0, end_s=2.0, text='a cat'), TimedPrompt(start_s=2.0, end_s=4.0, text='a dog'))
    """
    if not isinstance(prompts, str):
        raise _bad(f"expected a string, got {type(prompts).__name__}")
    items = [s.strip() for s in re.split(r"[;\n]", prompts) if s.strip()]
    if not items:
        raise _bad("the string is empty")
    spans = sorted((_parse_item(s) for s in items), key=lambda p: (p.start_s, p.end_s))
    if spans[0].start_s != 0:
        raise _bad(f"the first range starts at {spans[0].start_s:g} s, not 0 (the video starts at 0 s)")
    for a, b in zip(spans, spans[1:]):
        if b.start_s < a.end_s:
            raise _bad(f"[{a.start_s:g}s-{a.end_s:g}s] and [{b.start_s:g}s-{b.end_s:g}s] overlap")
        if b.start_s > a.end_s:
            raise _bad(f"nothing covers {a.end_s:g} s to {b.start_s:g} s (a gap between [{a.start_s:g}s-{a.end_s:g}s] "
                       f"and [{b.start_s:g}s-{b.end_s:g}s])")
    return tuple(spans)


def check_fps(fps: float) -> float:
    """``fps`` as a float; ``ValueError`` unless it is a positive, finite number."""
    if isinstance(fps, bool) or not (isinstance(fps, (int, float)) and math.isfinite(fps) and fps > 0):
        raise ValueError(f"fps must be a positive number of frames per second, got {fps!r} (the official demo: "
                         f"{DEFAULT_FPS:g})")
    return float(fps)


def section_seconds(step: Step, fps: float) -> tuple[float, float]:
    """The stretch of video a plan step generates, in seconds: ``(start, end)``.

    Latent frames ``a..b`` (``a >= 1``) decode to pixel frames ``pixel_frames(a) .. pixel_frames(b + 1) - 1``
    (4 per latent frame after the first), so the section plays from ``pixel_frames(a) / fps`` to
    ``pixel_frames(b + 1) / fps``.
    """
    fps = check_fps(fps)
    a, b = min(step.generated), max(step.generated)
    return pixel_frames(a) / fps, pixel_frames(b + 1) / fps


def section_prompts(spans: tuple[TimedPrompt, ...], plan: Plan, fps: float) -> list[str]:
    """The prompt of each step of ``plan``, in generation order (the plan's step order).

    Each step takes the span that holds the middle of its :func:`section_seconds`. ``ValueError``
    (before any work) when a step's middle lies beyond the last span, saying how far to extend it.
    """
    out = []
    for step in plan.steps:
        start, end = section_seconds(step, fps)
        middle = (start + end) / 2
        span = next((p for p in spans if p.covers(middle)), None)
        if span is None:
            raise ValueError(f"timed prompts end at {spans[-1].end_s:g} s but step {step.index} of the "
                             f"{plan.order} plan generates {start:.2f}-{end:.2f} s (middle {middle:.2f} s) at {fps:g} "
                             f"fps; extend the last range to at least {math.ceil(end):d}s")
        out.append(span.text)
    return out
