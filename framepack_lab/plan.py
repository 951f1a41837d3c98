"""Sampling orders as plans: which frames each step generates and which known frames it sees.

A video has ``n_frames`` latent frames. Frame 0 is given (the user's image); the rest are
generated in sections of ``S = schedule.generated`` frames. A plan is a list of :class:`Step`;
each step names the frames it generates, and for every block of the schedule the known frames
packed into it, with kernel and RoPE time position. No tensors: plots of token budgets use it.

How a schedule's blocks are filled (our reading of the paper, and of the official loops):

* *near* blocks take the nearest **known** frames on their side of the section, nearest block
  first (RoPE with random access: a time gap costs no tokens);
* *far* blocks (beyond an ``x``) take the video's boundary frames: the first frames for the left
  side, the last frames for the right side;
* the *tail* is every other known frame on the tail side; ``td`` drops it;
* a block with no known frames yet is left out (it contributes no tokens); a block with fewer
  frames than it asks for is replicate-padded by the packer;
* each known frame is used at most once per step.

Orders: :func:`vanilla`, :func:`anti_drifting`, :func:`inverted_anti_drifting`, :func:`f1`.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Callable, Sequence

from .schedule import BASE, PRESETS, Block, Kernel, Schedule, as_schedule, part_label, tail_token_count

ORDERS = ("vanilla", "anti_drifting", "inverted_anti_drifting", "f1")

# Each order's default schedule, as a key of the one table of named schedules (schedule.PRESETS).
DEFAULT_PRESETS = {
    "vanilla": "temporal_kernel",
    "anti_drifting": "anti_drifting",
    "inverted_anti_drifting": "inverted",
    "f1": "important_start",
}
DEFAULT_SCHEDULES = {order: PRESETS[key].name for order, key in DEFAULT_PRESETS.items()}


@dataclass(frozen=True)
class Group:
    """Known frames packed with one kernel.

    Attributes:
        kernel: the patchify kernel.
        frames: latent frame indices in the video, in time order.
        positions: RoPE time position of each frame (usually the frame index).
        role: ``"left"``, ``"right"`` (a schedule block), ``"tail"`` (beyond the blocks).
        block: the schedule block this group fills (``None`` for a tail group).
    """

    kernel: Kernel
    frames: tuple[int, ...]
    positions: tuple[int, ...]
    role: str
    block: Block | None = None
    tail: str | None = None

    def tokens(self, latent_h: int, latent_w: int) -> int:
        """Tokens after replicate padding; a tail group follows its option
        (:func:`framepack_lab.schedule.tail_token_count`: ta one per frame, tc one)."""
        if self.tail is not None:
            return tail_token_count(self.tail, len(self.frames))
        return self.kernel.tokens(len(self.frames), latent_h, latent_w)


@dataclass(frozen=True)
class Step:
    """One generation step of a plan.

    Attributes:
        index: the step's place in the sampling order (0 = generated first).
        generated: frame indices this step produces, in time order.
        positions: RoPE time positions of the generated frames.
        groups: context groups in time order (left blocks, right blocks, tail).
        schedule: the schedule the step follows.
    """

    index: int
    generated: tuple[int, ...]
    positions: tuple[int, ...]
    groups: tuple[Group, ...]
    schedule: Schedule

    @property
    def context_frames(self) -> tuple[int, ...]:
        return tuple(f for g in self.groups for f in g.frames)

    @property
    def hidden_time(self) -> int:
        """Latent frames of true time between the anchor and the section that the RoPE positions
        leave out: the inverted order's capped gap, F1's closed gap; 0 where every frame keeps its
        true time. A model told this number (``TinyConfig.hidden_time_max``) can know how far its
        section really is from the anchor while the anchor stays close in RoPE."""
        return self.generated[0] - self.positions[0]

    def _label(self, g: "Group") -> str:
        """The group's label in :func:`framepack_lab.schedule.part_label`'s format (the block it
        fills, which it may fill only partly), or its tail option."""
        if g.tail or g.block is None:
            return g.tail or g.role
        blocks = self.schedule.side_blocks(g.role)
        i = next((i for i, b in enumerate(blocks) if b is g.block), None)
        return part_label(g.role, blocks.index(g.block) if i is None else i, g.block)

    def token_breakdown(self, latent_h: int, latent_w: int) -> list[tuple[str, int]]:
        """``[(label, tokens), ...]`` for the section and every context group; labels as
        :meth:`Schedule.token_breakdown`'s (``"left:0:f16k4"``, ``"g4"``, ``"td"`` ...)."""
        out = [(f"g{len(self.generated)}", BASE.tokens(len(self.generated), latent_h, latent_w))]
        for g in self.groups:
            out.append((self._label(g), g.tokens(latent_h, latent_w)))
        return out

    def token_count(self, latent_h: int, latent_w: int) -> int:
        """Tokens the model sees in this step (generated frames plus packed context)."""
        return sum(n for _, n in self.token_breakdown(latent_h, latent_w))


@dataclass(frozen=True)
class Plan:
    """The steps of one sampling order for a video of ``n_frames`` latent frames.

    ``total_frames`` may exceed ``n_frames`` by less than one section when ``n_frames - 1`` is not
    a multiple of the section length; :func:`framepack_lab.generate.generate` trims the extra.
    """

    order: str
    schedule: Schedule
    n_frames: int
    total_frames: int
    steps: tuple[Step, ...]

    def __iter__(self):
        return iter(self.steps)

    def __len__(self) -> int:
        return len(self.steps)

    def tokens_per_step(self, latent_h: int, latent_w: int) -> list[int]:
        return [s.token_count(latent_h, latent_w) for s in self.steps]


# --------------------------------------------------------------------------------- filling
def _fill_side(blocks_near_first: Sequence[Block], candidates: list[int], role: str,
               used: set[int]) -> list[Group]:
    """Fill blocks (nearest block first) from ``candidates`` (nearest frame first)."""
    groups = []
    pool = [f for f in candidates if f not in used]
    for block in blocks_near_first:
        take, pool = pool[:block.frames], pool[block.frames:]
        if not take:
            continue
        used.update(take)
        frames = tuple(sorted(take))
        groups.append(Group(block.kernel, frames, frames, role, block))
    return groups


def _build_step(index: int, schedule: Schedule, section: Sequence[int], known: set[int]) -> Step:
    """Pack the known frames around ``section`` according to ``schedule``, every frame at its
    true time (RoPE position = frame index; :func:`_retimed` moves them)."""
    lo, hi = section[0], section[-1]
    used: set[int] = set()
    left, right = schedule.left, schedule.right

    # far blocks first: anchored at the video boundary, they claim their frames before near ones
    far_left = _fill_side(left.far, sorted(f for f in known if f < lo), "left", used) if left.far else []
    far_right = (_fill_side(right.far[::-1], sorted((f for f in known if f > hi), reverse=True),
                            "right", used) if right.far else [])
    near_left = _fill_side(left.near[::-1], sorted((f for f in known if f < lo), reverse=True), "left", used)
    near_right = _fill_side(right.near, sorted(f for f in known if f > hi), "right", used)

    tail_groups: list[Group] = []
    if schedule.tail in ("ta", "tc"):
        side_frames = [f for f in known if (f < lo if schedule.tail_side == "left" else f > hi)]
        rest = tuple(sorted(f for f in side_frames if f not in used))
        if rest:
            tail_groups.append(Group(BASE, rest, rest, "tail", None, schedule.tail))

    ordered = (sorted(far_left, key=lambda g: g.frames[0]) + sorted(near_left, key=lambda g: g.frames[0])
               + sorted(near_right, key=lambda g: g.frames[0]) + sorted(far_right, key=lambda g: g.frames[0]))
    if schedule.tail_side == "left":
        ordered = tail_groups + ordered
    else:
        ordered = ordered + tail_groups
    gen = tuple(section)
    return Step(index, gen, gen, tuple(ordered), schedule)


def _retimed(step: Step, shift: Callable[[int], int]) -> Step:
    """``step`` with every frame's RoPE time position set to ``shift(frame index)``."""
    groups = tuple(dataclasses.replace(g, positions=tuple(shift(f) for f in g.frames)) for g in step.groups)
    return dataclasses.replace(step, positions=tuple(shift(f) for f in step.generated), groups=groups)


# ``retime(i, step, known)``: the RoPE time position of each frame in step ``i`` of an order, given
# the frames known before it (``None``: true time).
Retime = Callable[[int, Step, set[int]], Callable[[int], int]]


def _walk(order: str, schedule: Schedule, n_frames: int, total: int, sections: Sequence[Sequence[int]],
          retime: Retime | None = None) -> Plan:
    """The known-frames loop every order shares: generate ``sections`` in the order given, each
    step packing the frames known so far (frame 0 and every earlier section)."""
    known, steps = {0}, []
    for i, sec in enumerate(sections):
        step = _build_step(i, schedule, sec, known)
        if retime is not None:
            step = _retimed(step, retime(i, step, known))
        steps.append(step)
        known.update(sec)
    return Plan(order, schedule, n_frames, total, tuple(steps))


def _shift_all_but(anchors: set[int], delta: int) -> Callable[[int], int]:
    """Anchors keep their frame index as position; every other frame moves back by ``delta``."""
    return lambda f: f if f in anchors else f - delta


def _sections(n_frames: int, S: int) -> tuple[int, list[list[int]]]:
    if not isinstance(n_frames, int) or n_frames < 2:
        raise ValueError(f"n_frames must be an integer >= 2 (frame 0 is the given image), got {n_frames!r}")
    n_sections = math.ceil((n_frames - 1) / S)
    total = 1 + n_sections * S
    return total, [list(range(1 + k * S, 1 + (k + 1) * S)) for k in range(n_sections)]


def _schedule_for(order: str, schedule: "Schedule | str | None") -> Schedule:
    return as_schedule(DEFAULT_SCHEDULES[order] if schedule is None else schedule)


# ---------------------------------------------------------------------------------- orders
def vanilla(n_frames: int, schedule: "Schedule | str | None" = None) -> Plan:
    """Sections in time order, each conditioned on the packed past. The only causal order."""
    sched = _schedule_for("vanilla", schedule)
    total, sections = _sections(n_frames, sched.generated)
    return _walk("vanilla", sched, n_frames, total, sections)


def f1(n_frames: int, schedule: "Schedule | str | None" = None) -> Plan:
    """FramePack-F1: vanilla order with the first frame as a permanent anchor.

    As in the official F1 loop, the anchor's RoPE position stays 0 and the packed history follows
    right after it: the time gap between the anchor and the history is removed, so positions do
    not grow with the video (indices ``[start | 4x | 2x | 1x | noisy]``).
    """
    sched = _schedule_for("f1", schedule)
    total, sections = _sections(n_frames, sched.generated)
    n_far = sum(b.frames for b in sched.left.far)

    def retime(i: int, step: Step, known: set[int]) -> Callable[[int], int]:
        # the far-left blocks are filled first, from the earliest known frames: those are the
        # anchors (matching groups by Block equality would also catch an equal near block)
        anchors = set(sorted(f for f in known if f < step.generated[0])[:n_far])
        rest = [f for g in step.groups if g.role == "left" and not set(g.frames) & anchors for f in g.frames]
        first = min(rest) if rest else step.generated[0]
        return _shift_all_but(anchors, first - (max(anchors) + 1 if anchors else 0))  # close the gap

    return _walk("f1", sched, n_frames, total, sections, retime)


def anti_drifting(n_frames: int, schedule: "Schedule | str | None" = None) -> Plan:
    """Endpoints first: the opening and the closing section, then the gap filled in time order,
    each fill conditioned on context from both sides."""
    sched = _schedule_for("anti_drifting", schedule)
    total, sections = _sections(n_frames, sched.generated)
    order = [sections[0]] + ([sections[-1]] if len(sections) > 1 else []) + sections[1:-1]
    return _walk("anti_drifting", sched, n_frames, total, order)


# The RoPE gap between the inverted order's anchor (the first frame, position 0) and each section,
# counted in sections of padding: "official" is the official loop's (and diffusers') capped gap,
# "true" puts every section at its true distance, an int k caps the true padding at k sections.
INVERTED_GAPS = ("official", "true")
DEFAULT_INVERTED_GAP = "official"
OFFICIAL_MAX_SECTIONS = 4  # the official loop caps the padding once a video has more sections than this


def check_gap(gap) -> "str | int":
    """``gap`` if it is one of :data:`INVERTED_GAPS` or an integer >= 0, else ``ValueError``."""
    if gap in INVERTED_GAPS or (isinstance(gap, int) and not isinstance(gap, bool) and gap >= 0):
        return gap
    raise ValueError(f"gap must be one of {', '.join(map(repr, INVERTED_GAPS))} or an integer >= 0 "
                     f"(the padding capped at that many sections), got {gap!r}")


def inverted_padding(n_sections: int, gap: "str | int" = DEFAULT_INVERTED_GAP) -> list[int]:
    """The padding of inverted anti-drifting in generation order: how many sections of RoPE time
    lie between the anchor and each section.

    ``"official"``: ``reversed(range(N))``, or ``[3] + [2] * (N - 3) + [1, 0]`` when N > 4 (the
    official loop caps the gap; its comment says duplicating some paddings "looks better" than
    expanding them). ``"true"``: ``reversed(range(N))``, every section at its true distance. An
    integer ``k``: the true padding capped at ``k``, ``min(p, k)``.
    """
    gap = check_gap(gap)
    true = list(reversed(range(n_sections)))
    if gap == "true":
        return true
    if gap == "official":
        return [3] + [2] * (n_sections - 3) + [1, 0] if n_sections > OFFICIAL_MAX_SECTIONS else true
    return [min(p, gap) for p in true]


def inverted_anti_drifting(n_frames: int, schedule: "Schedule | str | None" = None,
                           gap: "str | int" = DEFAULT_INVERTED_GAP) -> Plan:
    """Reverse time: every section is conditioned on the first frame (a clean anchor at time 0)
    and the already generated later frames, so each step generates *toward* a real frame.

    The section and its future sit at RoPE position ``1 + padding * S`` after the anchor, with the
    padding of :func:`inverted_padding` for ``gap`` (default the official loop's capped gap; with
    ``"true"`` every frame keeps its true time). The gap is the order's motion knob: a model that
    learned true distances moves its sprites as far as the gap says.
    """
    sched = _schedule_for("inverted_anti_drifting", schedule)
    S = sched.generated
    total, sections = _sections(n_frames, S)
    pads = inverted_padding(len(sections), gap)

    def retime(i: int, step: Step, known: set[int]) -> Callable[[int], int]:
        start = step.generated[0]  # the section starts at position 1 + pad * S, after the anchor
        return _shift_all_but({f for f in known if f < start}, start - (1 + pads[i] * S))

    return _walk("inverted_anti_drifting", sched, n_frames, total, sections[::-1], retime)


_ORDER_FUNCS = {
    "vanilla": vanilla,
    "anti_drifting": anti_drifting,
    "inverted_anti_drifting": inverted_anti_drifting,
    "f1": f1,
}


def make_plan(order: str, n_frames: int, schedule: "Schedule | str | None" = None,
              gap: "str | int | None" = None) -> Plan:
    """The plan of sampling ``order`` (one of :data:`ORDERS`) for ``n_frames`` latent frames.

    ``gap`` (inverted anti-drifting only; default :data:`DEFAULT_INVERTED_GAP`): the RoPE gap
    between the anchor and each section, see :func:`inverted_padding`. The other orders keep every
    frame at its true time and refuse a gap.
    """
    if order not in _ORDER_FUNCS:
        raise ValueError(f"unknown sampling order {order!r}; choose one of {', '.join(ORDERS)}")
    if gap is None:
        return _ORDER_FUNCS[order](n_frames, schedule)
    if order != "inverted_anti_drifting":
        raise ValueError(f"gap={gap!r} applies to inverted_anti_drifting only (order {order!r} keeps every "
                         "frame at its true time); leave gap out")
    return inverted_anti_drifting(n_frames, schedule, gap)  # inverted_padding checks the gap


# ------------------------------------------------------------------- the official layout
# The released HunyuanVideo FramePack checkpoints were trained with one fixed layout per loop: a
# history of 1 + 2 + 16 slots (1x, 2x, 4x) that is always present, zero where no frame exists yet,
# and sections of 9 latent frames (33 pixel frames). Our plans drop or replicate-pad what is not
# there instead; official_plan writes the official loops as plans. Every slot is present, and an
# empty slot points at a *blank* latent frame: one extra frame at the end of the buffer that no
# step generates (so it stays zero) and that generate trims. Run through generate on the
# HunyuanVideo backend it reproduces diffusers' HunyuanVideoFramepackPipeline to float precision
# (tests/test_hunyuan.py), given the same first-frame latent.
OFFICIAL_HISTORY = (1, 2, 16)  # 1x, 2x, 4x history slots of the released checkpoints
OFFICIAL_WINDOW = 9            # latent frames per section (33 pixel frames)
OFFICIAL_ORDERS = ("inverted_anti_drifting", "f1")  # the two loops with released checkpoints


def official_plan(order: str, n_sections: int, window: int = OFFICIAL_WINDOW) -> Plan:
    """The loop of the official demo (and of diffusers' ``HunyuanVideoFramepackPipeline``) as a plan.

    Every step sees the start frame as a 1x anchor at position 0 and a fixed 1 + 2 + 16 history
    (1x, 2x, 4x); slots with no frame yet point at the blank frame ``n_frames`` (the extra frame
    of ``total_frames``), which stays zero and is trimmed by ``generate``.

    Args:
        order: one of :data:`OFFICIAL_ORDERS`:

            * ``"inverted_anti_drifting"`` (checkpoint FramePackI2V_HY): reverse time, history =
              the frames right after the section; RoPE gap capped by :func:`inverted_padding`;
            * ``"f1"`` (checkpoint FramePack_F1_I2V_HY_20250503): time order, history = the 19
              frames before the section, positions fixed: anchor 0, history 1..19, section 20..
              (diffusers' pipeline calls this loop ``sampling_type="vanilla"``).
        n_sections: sections of ``window`` latent frames; ``n_frames = 1 + n_sections * window``.
        window: latent frames per section (diffusers' ``latent_window_size``).

    Returns:
        A :class:`Plan` with ``total_frames = n_frames + 1`` (the blank frame last).

    Example:
        >>> p = official_plan("f1", 2)
        >>> p.n_frames, p.total_frames, p.steps[0].positions[0]
        (19, 20, 20)
    """
    if order not in OFFICIAL_ORDERS:
        hint = (" (diffusers' sampling_type='vanilla' is our order 'f1')" if order == "vanilla" else "")
        raise ValueError(f"official_plan: the released checkpoints have loops for the orders "
                         f"{' and '.join(map(repr, OFFICIAL_ORDERS))} only, got {order!r}{hint}; "
                         "use make_plan for the other orders")
    if not isinstance(n_sections, int) or n_sections < 1 or not isinstance(window, int) or window < 1:
        raise ValueError(f"official_plan needs integers n_sections >= 1 and window >= 1, got {n_sections!r}, "
                         f"{window!r}")
    W, n_hist = window, sum(OFFICIAL_HISTORY)
    n_frames = 1 + n_sections * W
    blank = n_frames
    if order == "inverted_anti_drifting":
        schedule = as_schedule(f"f1k1_x_g{W}_f1k1f2k2f16k4_td")
        slot_blocks, role = schedule.right.near, "right"
    else:
        schedule = as_schedule(f"f1k1_x_f16k4f2k2f1k1_g{W}")
        slot_blocks, role = schedule.left.near, "left"
    anchor = Group(Kernel.k(1), (0,), (0,), "left", schedule.left.far[0])
    steps = []
    for i in range(n_sections):
        if order == "inverted_anti_drifting":
            k = n_sections - 1 - i  # sections from the end of the video backwards
            start = 1 + inverted_padding(n_sections)[i] * W  # section position after the anchor
            generated = tuple(range(1 + k * W, 1 + (k + 1) * W))
            slots = [f if f < n_frames else blank for f in range(generated[-1] + 1, generated[-1] + 1 + n_hist)]
            slot_positions = range(start + W, start + W + n_hist)
            positions = tuple(range(start, start + W))
        else:
            generated = tuple(range(1 + i * W, 1 + (i + 1) * W))
            slots = [f if f >= 0 else blank for f in range(generated[0] - n_hist, generated[0])]
            slot_positions = range(1, 1 + n_hist)
            positions = tuple(range(1 + n_hist, 1 + n_hist + W))
        groups, j = [anchor], 0
        for block in slot_blocks:
            frames, pos = tuple(slots[j:j + block.frames]), tuple(slot_positions[j:j + block.frames])
            groups.append(Group(block.kernel, frames, pos, role, block))
            j += block.frames
        steps.append(Step(i, generated, positions, tuple(groups), schedule))
    return Plan(order, schedule, n_frames, n_frames + 1, tuple(steps))
