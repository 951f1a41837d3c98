"""Packing schedules: blocks and sides of kernels, the paper's naming grammar, and token counts.

A *schedule* says how the context of one generation step is packed: which frames sit left and
right of the generated section ``gN`` in video time, and with which patchify kernel each block
of frames is turned into tokens. Names follow the paper's ablative naming:

    name     := [tail "_"] side "_" gN ["_" side] ["_" tail] ["+D" [K]]
    side     := blocks | blocks "_x_" blocks | "x_" blocks | blocks "_x"
    blocks   := ("f" INT kernel)+
    kernel   := "k" INT | "k" INT "h" INT "w" INT
    tail     := "td" | "ta" | "tc"

Examples: ``td_f16k4f4k2f1k1_g9`` (vanilla), ``td_f16k4f4k2f1k1_g9_x_f1k1`` (anti-drifting with
an endpoint frame), ``f1k1_x_g9_f1k1f2k2f16k4_td`` (inverted anti-drifting, the official
HunyuanVideo layout). Left to right is video time. ``x`` is a skip of any number of frames: the
blocks beyond it are anchored at the video's boundary (its first or last frames) rather than next
to the section. The tail option is written on the far (old) side.

Numbers are bounded (:data:`MAX_FRAMES` frames per block or section, kernel sizes up to
:data:`MAX_KERNEL_SIZE`), so a mistyped name fails at once instead of planning a huge video.
:func:`parse_kernel` reads one kernel name (``k2``, ``k1h4w8``).

Three neighbours hold what a schedule is built on or used with, each re-exported here: the
kernels (:mod:`~framepack_lab.kernel`: ``Kernel``, ``BASE``, ``MAX_KERNEL_SIZE``), the named
schedules (:mod:`~framepack_lab.presets`: ``PRESETS``, ``Preset``) and the paper's Eq. 1-3
(:mod:`~framepack_lab.context_length`). None of them needs torch, so plots of token budgets are
instant.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

# Kernels, presets and Eq. 1-3 live in their own modules; re-exported so that
# `from framepack_lab.schedule import Kernel, PRESETS, context_length` works as it always has.
from .context_length import context_length, context_length_limit, frame_length, unpacked_length  # noqa: F401
from .kernel import BASE, MAX_KERNEL_SIZE, Kernel
from .presets import PRESETS, Preset  # noqa: F401

GRAMMAR = (
    "schedule grammar: [tail_]BLOCKS[_x_BLOCKS]_gN[_x][_BLOCKS][_tail][+D[K]] where BLOCKS is one or more "
    "'f<frames>k<N>' or 'f<frames>k<pf>h<ph>w<pw>' (kN = kernel (N, 2N, 2N)), tail is td|ta|tc; "
    "e.g. 'td_f16k4f4k2f1k1_g9', 'td_f16k4f4k2f1k1_g9_x_f1k1', 'f1k1_x_g9_f1k1f2k2f16k4_td'"
)

# Grammar limits: numbers beyond these are typos, not schedules, and would make a plan (and the
# video buffer of a generation) grow without bound. The official model uses 1 + 2 + 16 history
# frames, 9-frame sections and kernels up to k4 = (4, 8, 8); the paper's figures go up to k16.
MAX_FRAMES = 1024  # latent frames in one block or one generated section (gN); MAX_KERNEL_SIZE: kernel.py
_MAX_DIGITS = len(str(MAX_FRAMES))  # longer numbers are refused before int() reads them

TAIL_OPTIONS = {
    "td": "delete: frames beyond the last block are dropped",
    "ta": "append: each tail frame adds one latent pixel (one token)",
    "tc": "compress: all tail frames are average-pooled into one latent pixel (one token)",
}


def tail_token_count(tail: str | None, tail_frames: int) -> int:
    """Tokens of ``tail_frames`` frames beyond a schedule's blocks under tail option ``tail``.

    ``td`` (or no tail) drops them: 0; ``ta`` appends one latent pixel, one token, per frame;
    ``tc`` average-pools them all into one token (none when there is no tail frame). The one
    place this rule lives: :meth:`Schedule.tail_tokens` and the plan's tail groups use it.
    """
    if tail_frames < 0:
        raise ValueError(f"tail_frames must be >= 0, got {tail_frames!r}")
    if tail == "ta":
        return tail_frames
    if tail == "tc":
        return 1 if tail_frames else 0
    return 0


@dataclass(frozen=True)
class Block:
    """``frames`` consecutive context frames encoded with one ``kernel`` (``f16k4``)."""

    frames: int
    kernel: Kernel

    def __post_init__(self) -> None:
        if not isinstance(self.frames, int) or self.frames < 1:
            raise ValueError(f"block f{self.frames}{self.kernel.name}: needs at least one frame; {GRAMMAR}")
        if self.frames > MAX_FRAMES:
            raise ValueError(f"block f{self.frames}{self.kernel.name}: at most {MAX_FRAMES} frames per block "
                             f"(MAX_FRAMES); split it into several blocks or use fewer frames")

    @property
    def name(self) -> str:
        return f"f{self.frames}{self.kernel.name}"

    def tokens(self, latent_h: int, latent_w: int) -> int:
        return self.kernel.tokens(self.frames, latent_h, latent_w)


@dataclass(frozen=True)
class Side:
    """The context on one side of the generated section.

    ``near`` blocks sit next to the section, listed in video time order (so on the left side
    the block nearest the section is last, on the right side it is first). ``far`` blocks sit
    beyond a skip ``x`` and are anchored at the video boundary (first frames for the left side,
    last frames for the right). ``skip`` is True when the side has an ``x``.
    """

    near: tuple[Block, ...] = ()
    far: tuple[Block, ...] = ()
    skip: bool = False

    def __post_init__(self) -> None:
        if self.far and not self.skip:
            raise ValueError("far blocks need a skip 'x' between them and the section")

    @property
    def blocks(self) -> tuple[Block, ...]:
        return self.near + self.far

    @property
    def frames(self) -> int:
        return sum(b.frames for b in self.blocks)


def _blocks_name(blocks: tuple[Block, ...]) -> str:
    return "".join(b.name for b in blocks)


def part_label(side: str, index: int, block: Block) -> str:
    """The one label of a context block in token breakdowns: ``"<side>:<index>:<block name>"``,
    e.g. ``"left:0:f16k4"`` (index in video time order on its side)."""
    return f"{side}:{index}:{block.name}"


@dataclass(frozen=True)
class Schedule:
    """One step's packing: context blocks left and right of ``generated`` new frames.

    Attributes:
        generated: frames generated in the step (``gN``), always at the base kernel.
        left, right: the context on each side (see :class:`Side`).
        tail: ``None``, or ``"td"`` / ``"ta"`` / ``"tc"`` for frames beyond the blocks.
        tail_side: ``"left"`` or ``"right"``: the far (old) side the tail is written on.
        discrete: the ``+D`` flag (discrete history, NeurIPS version).
        codebook_k: the codebook size ``K`` written as ``+DK`` (e.g. ``+D64``); ``None`` means the
            default (:data:`framepack_lab.discrete.DEFAULT_K`). Only with ``discrete``.
    """

    generated: int
    left: Side = field(default_factory=Side)
    right: Side = field(default_factory=Side)
    tail: str | None = None
    tail_side: str = "left"
    discrete: bool = False
    codebook_k: int | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.generated, int) or self.generated < 1:
            raise ValueError(f"g{self.generated}: a step must generate at least one frame; {GRAMMAR}")
        if self.generated > MAX_FRAMES:
            raise ValueError(f"g{self.generated}: a section of at most {MAX_FRAMES} frames (MAX_FRAMES); the paper "
                             "generates 9 latent frames per section, the embedded model 4 (e.g. g9 or g4)")
        if self.tail is not None and self.tail not in TAIL_OPTIONS:
            raise ValueError(f"unknown tail option {self.tail!r}: use one of td, ta, tc; {GRAMMAR}")
        if self.tail_side not in ("left", "right"):
            raise ValueError(f"tail_side must be 'left' or 'right', not {self.tail_side!r}")
        if self.codebook_k is not None and (not self.discrete or isinstance(self.codebook_k, bool)
                                            or not isinstance(self.codebook_k, int) or self.codebook_k < 1):
            raise ValueError(f"codebook_k={self.codebook_k!r}: a codebook size is a positive integer and needs "
                             "discrete=True (write e.g. '+D64' at the end of the name)")
        if self.tail is None:  # without a tail its side means nothing: one value, so equal schedules compare equal
            object.__setattr__(self, "tail_side", "left")

    # ----------------------------------------------------------------------------- naming
    @property
    def name(self) -> str:
        """The canonical name; ``parse(s.name) == s``."""
        parts: list[str] = []
        if self.tail and self.tail_side == "left":
            parts.append(self.tail)
        if self.left.far:
            parts += [_blocks_name(self.left.far), "x"]
        elif self.left.skip:
            parts.append("x")
        if self.left.near:
            parts.append(_blocks_name(self.left.near))
        parts.append(f"g{self.generated}")
        if self.right.near:
            parts.append(_blocks_name(self.right.near))
        if self.right.skip:
            parts.append("x")
        if self.right.far:
            parts.append(_blocks_name(self.right.far))
        if self.tail and self.tail_side == "right":
            parts.append(self.tail)
        flag = "" if not self.discrete else "+D" if self.codebook_k is None else f"+D{self.codebook_k}"
        return "_".join(parts) + flag

    def __str__(self) -> str:
        return self.name

    # ----------------------------------------------------------------------------- tokens
    @property
    def blocks(self) -> tuple[Block, ...]:
        return self.left.blocks + self.right.blocks

    @property
    def kernels(self) -> frozenset[Kernel]:
        """Every kernel the schedule uses (the generated section uses the base kernel)."""
        return frozenset({BASE, *(b.kernel for b in self.blocks)})

    @property
    def context_frames(self) -> int:
        return self.left.frames + self.right.frames

    def tail_tokens(self, tail_frames: int) -> int:
        """Tokens of ``tail_frames`` frames beyond the blocks under this schedule's tail option
        (:func:`tail_token_count`)."""
        return tail_token_count(self.tail, tail_frames)

    def side_blocks(self, side: str) -> tuple[Block, ...]:
        """The blocks of ``side`` (``"left"``/``"right"``) in video time order."""
        return self.left.far + self.left.near if side == "left" else self.right.near + self.right.far

    def token_breakdown(self, latent_h: int, latent_w: int, tail_frames: int = 0) -> dict[str, int]:
        """Tokens per part of one step, in video time order, keyed by part name.

        Block keys are ``"<side>:<index>:<block name>"`` (e.g. ``"left:0:f16k4"``); the section is
        ``"g9"``; the tail (when ``tail_frames`` > 0 and kept) is its option name.
        """
        _check_size(latent_h, latent_w)
        out: dict[str, int] = {}
        tail = self.tail_tokens(tail_frames)
        if tail and self.tail_side == "left":
            out[self.tail] = tail
        for i, block in enumerate(self.side_blocks("left")):
            out[part_label("left", i, block)] = block.tokens(latent_h, latent_w)
        out[f"g{self.generated}"] = BASE.tokens(self.generated, latent_h, latent_w)
        for i, block in enumerate(self.side_blocks("right")):
            out[part_label("right", i, block)] = block.tokens(latent_h, latent_w)
        if tail and self.tail_side == "right":
            out[self.tail] = tail
        return out

    def token_count(self, latent_h: int, latent_w: int, tail_frames: int = 0) -> int:
        """Tokens of one step with every block full: the generated frames plus the context.

        Each block is replicate-padded to its kernel in t, h and w; ``tail_frames`` frames
        beyond the blocks are counted per the tail option (``td`` 0, ``ta`` one each, ``tc`` one).
        """
        return sum(self.token_breakdown(latent_h, latent_w, tail_frames).values())


def _check_size(latent_h: int, latent_w: int) -> None:
    for name, v in (("latent_h", latent_h), ("latent_w", latent_w)):
        if not isinstance(v, int) or v < 1:
            raise ValueError(f"{name} must be a positive integer number of latent pixels, got {v!r}")


# --------------------------------------------------------------------------------- parsing
_KERNEL_RE = re.compile(r"k([0-9]+)(?:h([0-9]+)w([0-9]+))?")
_BLOCK_RE = re.compile(r"f([0-9]+)(k[0-9]+(?:h[0-9]+w[0-9]+)?)")
_GEN_RE = re.compile(r"g([0-9]+)")


def _number(digits: str, part: str) -> int:
    """An integer of the grammar; refuses numbers longer than any the grammar accepts."""
    if len(digits) > _MAX_DIGITS:
        raise ValueError(f"{part!r}: the number {digits[:12]}{'...' if len(digits) > 12 else ''} is larger than "
                         f"the grammar accepts (at most {MAX_FRAMES} frames per block or section, kernel sizes "
                         f"up to {MAX_KERNEL_SIZE}); use a smaller number")
    return int(digits)


def parse_kernel(name: str) -> Kernel:
    """A kernel from its name: ``"k2"`` -> ``Kernel(2, 4, 4)`` (the paper's ``kN`` = ``(N, 2N, 2N)``),
    ``"k1h4w8"`` -> ``Kernel(1, 4, 8)`` (spelled out). ``ValueError`` for anything else.

    >>> parse_kernel("k4").size
    (4, 8, 8)
    """
    m = _KERNEL_RE.fullmatch(name) if isinstance(name, str) else None
    if not m:
        raise ValueError(f"cannot read kernel name {name!r}: expected 'kN' or 'kNhHwW', e.g. 'k2' or 'k1h4w4'")
    n, h, w = (None if g is None else _number(g, name) for g in m.groups())
    return Kernel.k(n) if h is None else Kernel(n, h, w)


def as_kernel(spec: "Kernel | str") -> Kernel:
    """A :class:`Kernel` from a kernel or its name (see :func:`parse_kernel`)."""
    return spec if isinstance(spec, Kernel) else parse_kernel(spec)


def _parse_blocks(token: str, name: str) -> tuple[Block, ...]:
    blocks: list[Block] = []
    pos = 0
    while pos < len(token):
        m = _BLOCK_RE.match(token, pos)
        if not m:
            raise ValueError(f"cannot read {token[pos:]!r} in schedule {name!r}; {GRAMMAR}")
        try:
            blocks.append(Block(_number(m.group(1), m.group(0)), parse_kernel(m.group(2))))
        except ValueError as e:
            raise ValueError(f"in schedule {name!r}, block {m.group(0)!r}: {e}") from None
        pos = m.end()
    return tuple(blocks)


def _parse_side(tokens: list[str], name: str, side: str) -> Side:
    """``tokens`` in video time order for one side; returns the side with near/far split."""
    if tokens.count("x") > 1:
        raise ValueError(f"schedule {name!r}: at most one skip 'x' on the {side} side; {GRAMMAR}")
    if "x" not in tokens:
        segments, skip = [tokens, []], False
    else:
        i = tokens.index("x")
        before, after = tokens[:i], tokens[i + 1:]
        # on the left the far segment is before the x; on the right it is after it
        segments, skip = ([after, before] if side == "left" else [before, after]), True
    near_tokens, far_tokens = segments
    near = tuple(b for t in near_tokens for b in _parse_blocks(t, name))
    far = tuple(b for t in far_tokens for b in _parse_blocks(t, name))
    return Side(near=near, far=far, skip=skip)


def parse(name: str) -> Schedule:
    """Parse a schedule name (see the module docstring for the grammar).

    >>> parse("f1k1_x_g9_f1k1f2k2f16k4_td").token_count(80, 76)
    17500
    """
    if not isinstance(name, str):
        raise ValueError(f"a schedule name must be a string, got {type(name).__name__}; {GRAMMAR}")
    if not name.strip():
        raise ValueError(f"empty schedule name; {GRAMMAR}")
    text = name.strip()
    flag = re.search(r"\+D(\d*)$", text)
    discrete, codebook_k = flag is not None, None
    if flag:
        text = text[:flag.start()]
        if flag.group(1):
            codebook_k = int(flag.group(1))
            if codebook_k < 1:
                raise ValueError(f"schedule {name!r}: '+D{flag.group(1)}' asks for a codebook of {codebook_k} "
                                 "centroids; K must be at least 1 (e.g. '+D256', or '+D' for the default)")
    tokens = [t for t in text.split("_")]
    if any(t == "" for t in tokens):
        raise ValueError(f"schedule {name!r} has an empty part (doubled or trailing '_'); {GRAMMAR}")
    tail, tail_side = None, "left"
    if tokens[0] in TAIL_OPTIONS:
        tail, tail_side = tokens.pop(0), "left"
    if tokens and tokens[-1] in TAIL_OPTIONS:
        if tail is not None:
            raise ValueError(f"schedule {name!r}: a tail option on both sides; write it once, on the old side")
        tail, tail_side = tokens.pop(), "right"
    gen = [i for i, t in enumerate(tokens) if t.startswith("g")]
    if len(gen) != 1:
        raise ValueError(f"schedule {name!r} needs exactly one generated part 'gN', found {len(gen)}; {GRAMMAR}")
    g = gen[0]
    m = _GEN_RE.fullmatch(tokens[g])
    if not m:
        raise ValueError(f"cannot read {tokens[g]!r} in schedule {name!r}: expected gN, e.g. g9; {GRAMMAR}")
    generated = _number(m.group(1), tokens[g])
    for t in tokens:
        if t in TAIL_OPTIONS:
            raise ValueError(f"schedule {name!r}: tail option {t!r} must be at one end; {GRAMMAR}")
    left = _parse_side(tokens[:g], name, "left")
    right = _parse_side(tokens[g + 1:], name, "right")
    try:
        return Schedule(generated=generated, left=left, right=right, tail=tail, tail_side=tail_side,
                        discrete=discrete, codebook_k=codebook_k)
    except ValueError as e:
        raise ValueError(f"in schedule {name!r}: {e}") from None


def as_schedule(spec: "Schedule | str") -> Schedule:
    """A :class:`Schedule` from a schedule, a name, or a preset key."""
    if isinstance(spec, Schedule):
        return spec
    if isinstance(spec, str) and spec in PRESETS:
        return parse(PRESETS[spec].name)
    return parse(spec)
