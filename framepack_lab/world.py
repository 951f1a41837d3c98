"""Procedural videos with known ground truth: training data, and probes for drift and forgetting.

A *world* is drawn from a seed: a muted, low-frequency background that may pan slowly, and one to
three sprites (circle, square, diamond) in saturated colours that move in straight lines and
bounce off the frame's edges; optionally each sprite trails faint echoes of where it was
(:data:`TRAIL_ECHOES`), so that one frame shows its heading. Any frame time renders directly
(positions are a closed-form triangle wave), so a training batch never simulates from frame 0.

Every sprite of one world has a distinct palette colour, far from any background colour, so
:func:`find_sprites` can recover sprites from a frame (real or generated) by colour alone.

Seed ranges (disjoint): training uses ``TRAIN_SEEDS`` (0 .. 999,999); evaluation and the
notebooks' examples use ``HELDOUT_SEEDS`` (1,000,000 .. 1,009,999).
"""

from __future__ import annotations

import math
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
import torch

TRAIN_SEEDS = range(0, 1_000_000)
HELDOUT_SEEDS = range(1_000_000, 1_010_000)

SIZE = 64
PALETTE = np.array([
    [0.95, 0.12, 0.12],  # red
    [0.10, 0.80, 0.15],  # green
    [0.15, 0.30, 0.98],  # blue
    [0.98, 0.88, 0.05],  # yellow
    [0.92, 0.10, 0.88],  # magenta
    [0.05, 0.85, 0.92],  # cyan
], dtype=np.float32)
PALETTE_NAMES = ("red", "green", "blue", "yellow", "magenta", "cyan")
SHAPES = ("circle", "square", "diamond")
# Sprites span 2-3 latent pixels (the autoencoder downsamples by 4) and move at most a latent
# pixel in 4 frames, so a 4-frame section of the tiny model sees each sprite as a few tokens that
# move little: hard enough to show drift and forgetting, easy enough for a 2-core-CPU model.
SPRITE_RADIUS = (8.0, 11.0)  # pixels
SPRITE_SPEED = (0.4, 1.0)    # pixels per frame


@dataclass(frozen=True)
class Sprite:
    shape: str
    colour: int  # index into PALETTE
    radius: float
    y0: float
    x0: float
    vy: float  # pixels per frame
    vx: float


@dataclass(frozen=True)
class Occluder:
    """A full-height vertical band drawn *in front of* the sprites, from column ``x_lo`` to ``x_hi``
    (pixels): a sprite that crosses it is hidden, then comes back (what memory has to bridge)."""

    x_lo: float
    x_hi: float
    colour: tuple[float, float, float]  # muted, far from every palette colour


OCCLUDER_WIDTH = (20.0, 40.0)  # pixels, for training worlds with an occluder

# A motion trail: faint echoes of each sprite where it was ``frames`` ago, drawn under the sprite
# at ``opacity``. One frame then shows each sprite's heading and speed, so the far end of a video
# generated from its first frame alone (the inverted order's first section) is no longer a guess.
# Echoes stay far enough from the palette that :func:`find_sprites` finds the same sprites with
# about 2% more pixels (where an echo tints a sprite's anti-aliased edge; ``tests/test_world.py``).
# ``DEFAULT_TRAIL`` is what :func:`make_world` draws when not told.
TRAIL_ECHOES = ((8, 0.3), (16, 0.15))  # (frames behind, opacity), drawn in this order under the sprites
DEFAULT_TRAIL = False


def config_trail(cfg: dict) -> bool:
    """Whether training config ``cfg``'s worlds draw motion trails: its ``data.trail``. A config
    without it predates trails and trained without them, whatever :data:`DEFAULT_TRAIL` is now."""
    return bool(cfg.get("data", {}).get("trail", False))


@contextmanager
def default_trail(on: bool):
    """Within the block, :func:`make_world` (and everything that renders through it) draws motion
    trails when ``on``: how a tool shows a checkpoint the worlds it was trained on."""
    global DEFAULT_TRAIL
    before, DEFAULT_TRAIL = DEFAULT_TRAIL, bool(on)
    try:
        yield
    finally:
        DEFAULT_TRAIL = before


@dataclass(frozen=True)
class World:
    """Everything needed to render any frame of one procedural video."""

    seed: int
    size: int
    base: tuple[float, float, float]  # muted background colour
    waves: tuple[tuple[float, float, float, float, float, float, float, float], ...]
    # each wave: (fy, fx, phase, amp_r, amp_g, amp_b, pan_y, pan_x)
    sprites: tuple[Sprite, ...]
    occluder: Occluder | None = None  # a band in front of the sprites (forgetting probes)
    trail: bool = False  # draw each sprite's motion trail (:data:`TRAIL_ECHOES`)


def check_seed(seed) -> int:
    """``seed`` as an int, or ``ValueError`` saying which seeds are valid."""
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"world seed must be a non-negative integer, got {seed!r}; training worlds use "
                         f"TRAIN_SEEDS ({TRAIN_SEEDS.start:,} .. {TRAIN_SEEDS.stop - 1:,}), evaluation and the "
                         f"notebooks' examples HELDOUT_SEEDS ({HELDOUT_SEEDS.start:,} .. {HELDOUT_SEEDS.stop - 1:,}), "
                         "e.g. framepack_lab.world.HELDOUT_SEEDS[0]")
    return int(seed)


def make_world(seed: int, size: int = SIZE, occluded: bool = False, trail: bool | None = None) -> World:
    """Draw a world from ``seed`` (deterministic): any integer >= 0, see :data:`TRAIN_SEEDS` and
    :data:`HELDOUT_SEEDS`. ``occluded=True`` adds an :class:`Occluder` band (width in
    :data:`OCCLUDER_WIDTH`, drawn from its own stream, so the rest of the world is the same).
    ``trail`` draws motion trails (:data:`TRAIL_ECHOES`); ``None`` means :data:`DEFAULT_TRAIL`.
    Neither option changes the background or the sprites."""
    trail = DEFAULT_TRAIL if trail is None else bool(trail)
    rng = np.random.default_rng(check_seed(seed))
    hue = rng.uniform(0, 1)
    sat = rng.uniform(0.05, 0.25)
    val = rng.uniform(0.35, 0.6)
    base = _hsv_to_rgb(hue, sat, val)
    pan = rng.uniform(-0.3, 0.3, size=2) * (rng.uniform() < 0.5)  # half the worlds pan, slowly
    waves = []
    for _ in range(3):
        fy, fx = rng.uniform(-2.0, 2.0, size=2) / size
        amp = rng.uniform(0.02, 0.05) * (1 + rng.uniform(-0.5, 0.5, size=3))
        waves.append((float(fy), float(fx), float(rng.uniform(0, 2 * math.pi)), *map(float, amp),
                      float(pan[0]), float(pan[1])))
    n = int(rng.integers(1, 4))
    colours = rng.choice(len(PALETTE), size=n, replace=False)
    sprites = []
    for c in colours:
        r = float(rng.uniform(SPRITE_RADIUS[0], SPRITE_RADIUS[1]))
        speed = float(rng.uniform(SPRITE_SPEED[0], SPRITE_SPEED[1]))
        angle = float(rng.uniform(0, 2 * math.pi))
        sprites.append(Sprite(
            shape=SHAPES[int(rng.integers(len(SHAPES)))], colour=int(c), radius=r,
            y0=float(rng.uniform(r, size - r)), x0=float(rng.uniform(r, size - r)),
            vy=speed * math.sin(angle), vx=speed * math.cos(angle)))
    occluder = None
    if occluded:
        orng = np.random.default_rng([int(seed), 7])
        width = float(orng.uniform(*OCCLUDER_WIDTH)) * size / SIZE
        x_lo = float(orng.uniform(0, size - width))
        occluder = Occluder(x_lo, x_lo + width, occluder_colour(base))
    return World(seed, size, tuple(map(float, base)), tuple(waves), tuple(sprites), occluder, trail)


def occluder_colour(base) -> tuple[float, float, float]:
    """The band's colour for a world of background ``base``: darker and greyer, still muted."""
    b = np.asarray(base, dtype=np.float32)
    return tuple(float(v) for v in 0.55 * (0.5 * b + 0.5 * b.mean()))


def probe_world(seed: int, hidden_frames: int, speed: float = 0.5, radius: float = 8.0,
                size: int = SIZE) -> tuple[World, int, int]:
    """A forgetting probe: one sprite that moves right, passes behind a band and comes back.

    The sprite (colour, shape and background from ``seed``'s world) is fully visible at frame 0,
    becomes fully hidden at frame ``t_in`` and stays hidden for ``hidden_frames`` frames; from
    ``t_out = t_in + hidden_frames`` it emerges, fully visible again from ``t_out + 2 r / v``.
    It keeps its straight path behind the band, so where it comes back is known.

    Returns:
        ``(world, t_in, t_out)``.
    """
    if isinstance(hidden_frames, bool) or not isinstance(hidden_frames, (int, np.integer)) or hidden_frames < 0:
        raise ValueError(f"hidden_frames must be an integer >= 0, got {hidden_frames!r}")
    base = make_world(seed, size)
    t_in = int(math.ceil(2 * radius / speed))  # fully visible at frame 0, fully hidden from t_in
    x_lo = speed * t_in  # the sprite starts at x = radius, touching the band's left edge at t_in - 2r/v
    width = 2 * radius + speed * hidden_frames  # fully hidden while x in [x_lo + r, x_hi - r]
    if x_lo + width + 2 * radius > size:
        longest = int((size - 2 * radius - x_lo - 2 * radius) / speed)
        raise ValueError(f"a sprite of radius {radius} at speed {speed} px/frame can hide for at most {longest} "
                         f"frames in a {size}-pixel frame, not {hidden_frames}; use a slower speed or a shorter gap")
    first = base.sprites[0]
    sprite = Sprite(first.shape, first.colour, radius, y0=size / 2, x0=radius, vy=0.0, vx=speed)
    world = World(base.seed, size, base.base, base.waves, (sprite,),
                  Occluder(x_lo, x_lo + width, occluder_colour(base.base)), base.trail)
    return world, t_in, t_in + int(hidden_frames)


def hidden_mask(world: World, times) -> np.ndarray:
    """``(T, n_sprites)`` bool: the sprite is entirely behind the occluder at frame ``times``."""
    pos = sprite_positions(world, np.asarray(times))
    if world.occluder is None:
        return np.zeros(pos.shape[:2], dtype=bool)
    r = np.array([s.radius for s in world.sprites])
    x = pos[:, :, 1]
    return (x - r >= world.occluder.x_lo) & (x + r <= world.occluder.x_hi)


def _hsv_to_rgb(h: float, s: float, v: float) -> np.ndarray:
    i = int(h * 6) % 6
    f = h * 6 - int(h * 6)
    p, q, t = v * (1 - s), v * (1 - f * s), v * (1 - (1 - f) * s)
    return np.array([(v, t, p), (q, v, p), (p, v, t), (p, q, v), (t, p, v), (v, p, q)][i], dtype=np.float32)


def _bounce(p0: float, v: float, t: np.ndarray, lo: float, hi: float) -> np.ndarray:
    """Closed-form position of a point bouncing between lo and hi (a triangle wave)."""
    span = hi - lo
    u = np.mod(p0 - lo + v * t, 2 * span)
    return lo + np.where(u > span, 2 * span - u, u)


def sprite_positions(world: World, times) -> np.ndarray:
    """True sprite centres ``(T, n_sprites, 2)`` as (y, x) pixels at frame ``times``."""
    t = np.asarray(times, dtype=np.float64)
    out = np.zeros((len(t), len(world.sprites), 2))
    for j, s in enumerate(world.sprites):
        out[:, j, 0] = _bounce(s.y0, s.vy, t, s.radius, world.size - s.radius)
        out[:, j, 1] = _bounce(s.x0, s.vx, t, s.radius, world.size - s.radius)
    return out


def render(world: World, times) -> np.ndarray:
    """Frames of ``world`` at ``times``: ``(T, H, W, 3)`` float32 in [0, 1]."""
    t = np.asarray(times, dtype=np.float32)[:, None, None]
    n = world.size
    yy, xx = np.meshgrid(np.arange(n, dtype=np.float32), np.arange(n, dtype=np.float32), indexing="ij")
    img = np.broadcast_to(np.asarray(world.base, dtype=np.float32), (len(t), n, n, 3)).copy()
    for fy, fx, ph, ar, ag, ab, py, px in world.waves:
        wave = np.sin(2 * math.pi * (fy * (yy - py * t) + fx * (xx - px * t)) + ph)  # (T, H, W)
        img += wave[..., None] * np.array([ar, ag, ab], dtype=np.float32)
    times = np.asarray(times)
    layers = [(sprite_positions(world, times - lag).astype(np.float32), opacity)
              for lag, opacity in (TRAIL_ECHOES if world.trail else ())] + [
        (sprite_positions(world, times).astype(np.float32), 1.0)]
    for pos, opacity in layers:  # every sprite's echoes first, then the sprites themselves
        for j, s in enumerate(world.sprites):
            alpha = opacity * _coverage(s, yy[None] - pos[:, j, 0, None, None], xx[None] - pos[:, j, 1, None, None])
            img = img * (1 - alpha) + alpha * PALETTE[s.colour]
    if world.occluder is not None:
        o = world.occluder
        cover = np.clip(np.minimum(xx - o.x_lo + 0.5, o.x_hi - xx + 0.5), 0.0, 1.0)[None, ..., None]
        img = img * (1 - cover) + cover * np.asarray(o.colour, dtype=np.float32)
    return np.clip(img, 0.0, 1.0)


def _coverage(s: Sprite, dy: np.ndarray, dx: np.ndarray) -> np.ndarray:
    """``(T, H, W, 1)`` anti-aliased coverage of sprite ``s`` at offsets ``dy``, ``dx`` ``(T, H, W)``."""
    if s.shape == "circle":
        d = np.sqrt(dy**2 + dx**2)
    elif s.shape == "square":
        d = np.maximum(np.abs(dy), np.abs(dx)) * 1.15
    else:  # diamond
        d = (np.abs(dy) + np.abs(dx)) * 0.8
    return np.clip(s.radius - d + 0.5, 0.0, 1.0)[..., None]


def video(seed: int, n_frames: int, start: int = 0, size: int = SIZE, occluded: bool = False,
          trail: bool | None = None) -> np.ndarray:
    """``n_frames`` frames from ``start`` of the world drawn from ``seed``: ``(T, H, W, 3)``.
    ``trail``: see :func:`make_world`."""
    if isinstance(n_frames, bool) or not isinstance(n_frames, (int, np.integer)) or n_frames < 1:
        raise ValueError(f"n_frames must be a positive integer, got {n_frames!r}; use 1 for a single frame")
    return render(make_world(seed, size, occluded, trail), np.arange(start, start + n_frames))


def batch(seeds, n_frames: int, starts=None, size: int = SIZE, trail: bool | None = None) -> torch.Tensor:
    """A training batch ``(B, T, 3, H, W)`` float32 in [0, 1]. ``trail``: see :func:`make_world`."""
    starts = [0] * len(seeds) if starts is None else starts
    return torch.from_numpy(np.stack([video(s, n_frames, st, size, trail=trail) for s, st in zip(seeds, starts)])
                            ).permute(0, 1, 4, 2, 3).contiguous()


# ------------------------------------------------------------------------------- probes
MATCH_DISTANCE = 0.30  # RGB distance to a palette colour that still counts as that sprite
MIN_PIXELS = 12        # a sprite smaller than this many matching pixels is "gone"


def find_sprites(frame) -> dict[int, tuple[float, float, int]]:
    """Sprites found in one frame by colour.

    Args:
        frame: ``(H, W, 3)`` float in [0, 1] (numpy or torch).

    Returns:
        ``{palette index: (y, x, pixel count)}`` for each palette colour with at least
        ``MIN_PIXELS`` matching pixels; (y, x) is the centroid of the matching pixels.
    """
    f = np.asarray(frame, dtype=np.float32)
    d = np.linalg.norm(f[:, :, None, :] - PALETTE[None, None], axis=-1)  # (H, W, P)
    nearest = d.argmin(-1)
    close = d.min(-1) < MATCH_DISTANCE
    found = {}
    for c in range(len(PALETTE)):
        ys, xs = np.nonzero(close & (nearest == c))
        if len(ys) >= MIN_PIXELS:
            found[c] = (float(ys.mean()), float(xs.mean()), int(len(ys)))
    return found
