"""The named schedules the notebooks, the plans and the training mix share: :data:`PRESETS`.

Each :class:`Preset` is a key, a schedule name (see :mod:`~framepack_lab.schedule` for the
grammar) and what it illustrates; ``PRESETS[key].schedule`` parses it. Plain Python (no torch);
re-exported by :mod:`~framepack_lab.schedule`, whose :func:`~framepack_lab.schedule.as_schedule`
reads preset keys.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .schedule import Schedule


@dataclass(frozen=True)
class Preset:
    """A named schedule and what it illustrates."""

    key: str
    name: str
    description: str

    @property
    def schedule(self) -> Schedule:
        from .schedule import parse  # here, not at the top: schedule.py imports this module

        return parse(self.name)


# Our reading of the paper's packing-variant figure, scaled to the embedded model's 4-frame
# sections (the exact panel layouts are not published). Every one is O(1) in video length.
_PRESETS = [
    Preset("geometric", "td_f1k1h16w16f1k1h8w16f1k1h8w8f1k1h4w8f1k1h4w4f1k1h2w4f1k1_g4",
           "Time-proximity order with a per-frame geometric progression, lambda = 2 (Eq. 1): "
           "each older frame gets half the tokens of the next, by widening the spatial kernel."),
    Preset("level_duplication", "td_f4k1h8w8f2k1h4w4f2k1_g4",
           "Several frames share one compression level (2 at 1x, 2 at 4x, 4 at 16x): three levels "
           "instead of one per frame, simpler to lay out, though not fewer tokens than the geometric "
           "progression at the tiny model's 16x16 latents; spatial kernels only."),
    Preset("temporal_kernel", "td_f16k4f4k2f2k1_g4",
           "Consecutive frames packed into one token tensor with temporal kernels (k2 = (2,4,4), "
           "k4 = (4,8,8)), the kind of layout the official HunyuanVideo model uses; here 2 frames at "
           "1x and 4 at 2x (the official history is 1 + 2 + 16: `inverted_official_history`)."),
    Preset("symmetric", "f1k1f2k2f8k4_x_f8k4f2k2f1k1_g4",
           "Symmetric progression: the video's start and the latest frames are equally important, "
           "the middle of the history is compressed most."),
    Preset("important_start", "f1k1_x_f16k4f4k2f2k1_g4",
           "Important start: the first frame is kept at full length as a permanent anchor (good "
           "for image-to-video), the recent history is packed by time proximity (the F1 layout)."),
    Preset("anti_drifting", "td_f16k4f4k2f2k1_g4_x_f1k1",
           "For anti-drifting sampling: the packed past on the left and one endpoint frame at the "
           "end of the video on the right."),
    Preset("inverted", "f1k1_x_g4_f2k1f4k2f16k4_td",
           "For inverted anti-drifting: the user's first frame as a 1x anchor on the left, the "
           "already generated future on the right, compressed more the farther it lies."),
    Preset("inverted_official_history", "f1k1_x_g4_f1k1f2k2f16k4_td",
           "Inverted anti-drifting with the official model's history sizes (1 + 2 + 16 frames at "
           "1x, 2x, 4x) around the embedded model's 4-frame sections."),
    Preset("temporal_kernel_1x", "td_f16k4f4k2f1k1_g4",
           "The temporal-kernel layout with a single 1x frame: the paper's vanilla ablation row "
           "scaled to 4-frame sections."),
    Preset("anti_drifting_1x", "td_f16k4f4k2f1k1_g4_x_f1k1",
           "Anti-drifting's layout with a single 1x frame on the left (the paper's ablation row)."),
    Preset("official_inverted", "f1k1_x_g9_f1k1f2k2f16k4_td",
           "The official HunyuanVideo FramePack layout (9-frame sections, 1+2+16 history)."),
    Preset("official_vanilla", "td_f16k4f4k2f1k1_g9",
           "The paper's vanilla ablation row at its own 9-frame section length."),
]
PRESETS: dict[str, Preset] = {p.key: p for p in _PRESETS}
