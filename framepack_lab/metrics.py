"""Per-frame video metrics, the paper's start-end contrast, and ground-truth sprite probes.

Videos are ``(T, H, W, 3)`` float arrays in [0, 1]. Every per-frame metric returns ``(T,)``.
These are cheap offline stand-ins for the paper's model-based columns, named after what they
stand in for:

* :func:`clarity` — high-frequency energy (a stand-in for MUSIQ clarity);
* :func:`colourfulness` — Hasler & Suesstrunk colourfulness;
* :func:`dynamic` — mean absolute change from the previous frame (for RAFT flow magnitude);
* :func:`motion_smoothness` — error of predicting a frame as the mean of its neighbours (for the
  VBench frame-interpolation model);
* :func:`colour_drift` — distance of colour statistics to the first frame (identity/consistency).
"""

from __future__ import annotations

import numpy as np

from . import world


def _video(v) -> np.ndarray:
    v = np.asarray(v, dtype=np.float32)
    if v.ndim != 4 or v.shape[-1] != 3:
        raise ValueError(f"expected a video of shape (T, H, W, 3), got {v.shape}")
    return v


def start_end_contrast(values, frac: float = 0.15) -> float:
    """The paper's drift measure (Eq. 4): ``|mean(first frac) - mean(last frac)|`` of a per-frame
    series; direction-independent. At least one frame is taken at each end."""
    v = np.asarray(values, dtype=np.float64)
    if v.ndim != 1 or len(v) < 2:
        raise ValueError(f"start_end_contrast needs a per-frame series of length >= 2, got shape {v.shape}")
    if not 0 < frac <= 0.5:
        raise ValueError(f"frac must be in (0, 0.5], got {frac}")
    n = max(1, int(round(frac * len(v))))
    return float(abs(v[:n].mean() - v[-n:].mean()))


def clarity(video) -> np.ndarray:
    """Mean squared Laplacian of the grey image per frame (sharpness; higher = crisper)."""
    g = _video(video).mean(-1)
    lap = 4 * g[:, 1:-1, 1:-1] - g[:, :-2, 1:-1] - g[:, 2:, 1:-1] - g[:, 1:-1, :-2] - g[:, 1:-1, 2:]
    return (lap**2).mean(axis=(1, 2))


def colourfulness(video) -> np.ndarray:
    """Hasler & Suesstrunk colourfulness per frame (on a 0..1 scale)."""
    v = _video(video)
    rg = v[..., 0] - v[..., 1]
    yb = 0.5 * (v[..., 0] + v[..., 1]) - v[..., 2]
    std = np.sqrt(rg.std(axis=(1, 2)) ** 2 + yb.std(axis=(1, 2)) ** 2)
    mean = np.sqrt(rg.mean(axis=(1, 2)) ** 2 + yb.mean(axis=(1, 2)) ** 2)
    return std + 0.3 * mean


def dynamic(video) -> np.ndarray:
    """Mean absolute change from the previous frame (frame 0 repeats frame 1's value)."""
    v = _video(video)
    d = np.abs(np.diff(v, axis=0)).mean(axis=(1, 2, 3))
    return np.concatenate([d[:1], d]) if len(d) else np.zeros(len(v))


def motion_smoothness(video) -> np.ndarray:
    """Mean absolute error of predicting each inner frame as the average of its neighbours
    (lower = smoother); the two end frames repeat their neighbour's value."""
    v = _video(video)
    if len(v) < 3:
        return np.zeros(len(v))
    e = np.abs(v[1:-1] - 0.5 * (v[:-2] + v[2:])).mean(axis=(1, 2, 3))
    return np.concatenate([e[:1], e, e[-1:]])


def colour_stats(video) -> np.ndarray:
    """Per-frame colour statistics: RGB means and standard deviations, ``(T, 6)``."""
    v = _video(video)
    return np.concatenate([v.mean(axis=(1, 2)), v.std(axis=(1, 2))], axis=1)


def colour_drift(video, reference=None) -> np.ndarray:
    """L1 distance of each frame's colour statistics to the reference frame's (default: frame 0)."""
    s = colour_stats(video)
    ref = s[0] if reference is None else colour_stats(np.asarray(reference)[None])[0]
    return np.abs(s - ref).sum(axis=1)


PER_FRAME = {
    "clarity": clarity,
    "colourfulness": colourfulness,
    "dynamic": dynamic,
    "motion_smoothness": motion_smoothness,
    "colour_drift": colour_drift,
}


# ------------------------------------------------------------------------- sprite probes
def sprite_survival(video, t: int) -> float:
    """Fraction of the sprites found in frame 0 that are still found (same colour) at frame ``t``.

    Returns NaN when frame 0 shows no sprite.
    """
    v = _video(video)
    first = world.find_sprites(v[0])
    if not first:
        return float("nan")
    later = world.find_sprites(v[t])
    return sum(c in later for c in first) / len(first)


def sprite_displacements(video, t: int, tracks=None) -> dict[int, float]:
    """Distance in pixels each sprite (by colour) moved between frame 0 and frame ``t``
    (``tracks``: :func:`sprite_tracks` of ``video``, when the caller has them)."""
    if tracks is None:
        v = _video(video)
        a, b = world.find_sprites(v[0]), world.find_sprites(v[t])
    else:
        a, b = tracks[0], tracks[t]
    return {c: float(np.hypot(b[c][0] - a[c][0], b[c][1] - a[c][1])) for c in a if c in b}


def true_displacements(w: world.World, t: int) -> dict[int, float]:
    """Ground-truth distance each sprite of world ``w`` moves between frame 0 and frame ``t``."""
    p = world.sprite_positions(w, [0, t])
    return {s.colour: float(np.hypot(*(p[1, j] - p[0, j]))) for j, s in enumerate(w.sprites)}


def sprite_tracks(video) -> list[dict[int, tuple[float, float, int]]]:
    """:func:`framepack_lab.world.find_sprites` of every frame: ``[{colour: (y, x, pixels)}] * T``."""
    return [world.find_sprites(f) for f in _video(video)]


def sprite_presence(video, tracks=None) -> np.ndarray:
    """Per frame, the fraction of the sprites found in frame 0 still found (same colour): ``(T,)``.

    All NaN when frame 0 shows no sprite. Over the *whole* video, not one probe frame: the last
    frame alone flatters an order that generates the end first.
    """
    tracks = sprite_tracks(video) if tracks is None else tracks
    first = tracks[0]
    if not first:
        return np.full(len(tracks), np.nan)
    return np.array([sum(c in found for c in first) / len(first) for found in tracks])


def invented_sprites(video, tracks=None) -> np.ndarray:
    """Per frame, whether a sprite of a colour absent from frame 0 is found: ``(T,)`` of 0/1.

    What presence cannot see: a model that keeps every sprite but adds new ones (a drifting
    model's hallucinations) scores full presence. The worlds' own videos score above 0 only where
    a sprite hidden at frame 0 (behind another) comes out.
    """
    tracks = sprite_tracks(video) if tracks is None else tracks
    first = set(tracks[0])
    return np.array([float(any(c not in first for c in found)) for found in tracks])


def size_ratios(video, tracks=None) -> dict[int, float]:
    """Pixel count at the last frame over the first, for each first-frame sprite still found at
    the last frame (melting shrinks it, smearing grows it)."""
    tracks = sprite_tracks(video) if tracks is None else tracks
    first, last = tracks[0], tracks[-1]
    return {c: last[c][2] / first[c][2] for c in first if c in last}


def path_lengths(video, stride: int = 4, tracks=None) -> dict[int, tuple[float, list[int]]]:
    """Path length in pixels of each first-frame sprite, from its centroid every ``stride`` frames.

    Returns ``{colour: (length, times)}``: the summed centroid displacement over consecutive sampled
    frames where the sprite is found in both, and the sampled frames used (so the world's own path
    can be measured over the same frames, :func:`true_path_lengths`). A stride of a few frames
    keeps centroid jitter from counting as motion.
    """
    tracks = sprite_tracks(video) if tracks is None else tracks
    out = {}
    for c in tracks[0]:
        length, used = 0.0, []
        for t0 in range(0, len(tracks) - stride, stride):
            a, b = tracks[t0].get(c), tracks[t0 + stride].get(c)
            if a is not None and b is not None:
                length += float(np.hypot(b[0] - a[0], b[1] - a[1]))
                used.append(t0)
        out[c] = (length, used)
    return out


def true_path_lengths(w: world.World, paths: dict[int, tuple[float, list[int]]], stride: int = 4) -> dict[int, float]:
    """The world's own path length of each sprite over the same sampled frames as ``paths``."""
    out = {}
    for j, s in enumerate(w.sprites):
        if s.colour in paths:
            t0 = np.asarray(paths[s.colour][1], dtype=np.float64)
            if len(t0):
                p = world.sprite_positions(w, np.concatenate([t0, t0 + stride]))
                d = p[len(t0):, j] - p[:len(t0), j]
                out[s.colour] = float(np.hypot(d[:, 0], d[:, 1]).sum())
            else:
                out[s.colour] = 0.0
    return out


# --------------------------------------------------------------------------- drift report
def per_frame(video, names=None) -> dict[str, np.ndarray]:
    """``{metric name: (T,) curve}`` for the named per-frame metrics (default: all of ``PER_FRAME``)."""
    names = list(PER_FRAME) if names is None else list(names)
    unknown = [n for n in names if n not in PER_FRAME]
    if unknown:
        raise ValueError(f"unknown metric(s) {unknown}; choose from {sorted(PER_FRAME)}")
    return {n: PER_FRAME[n](video) for n in names}


def drift_report(video, metrics=None, frac: float = 0.15):
    """Per-frame curves and the start-end contrast of each metric.

    Args:
        video: ``(T, H, W, 3)`` in [0, 1].
        metrics: metric names (default: all of ``PER_FRAME``).
        frac: the share of frames at each end (the paper's 15%).

    Returns:
        ``(curves, table)``: ``{name: (T,)}`` and a pandas DataFrame indexed by metric with columns
        ``start`` (mean of the first ``frac``), ``end`` (mean of the last ``frac``), ``delta``
        (the start-end contrast).
    """
    import pandas as pd

    curves = per_frame(video, metrics)
    rows = {}
    for name, c in curves.items():
        n = max(1, int(round(frac * len(c))))
        rows[name] = {"start": float(c[:n].mean()), "end": float(c[-n:].mean()),
                      "delta": start_end_contrast(c, frac)}
    return curves, pd.DataFrame.from_dict(rows, orient="index")


# ------------------------------------------------------------------ model-based metrics
# The paper's real columns use learned models. They run here only when their weights are on disk
# (nothing is downloaded); a missing folder or package is an error that says what to provide.
CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)


def _need(path, what: str, layout: str):
    from pathlib import Path

    p = Path(path) if path is not None else None
    if p is None or not p.exists():
        raise FileNotFoundError(f"{what}: no weights at {path!r}. Put them in a local folder laid out as: "
                                f"{layout}; nothing is downloaded by framepack-lab.")
    return p


def aesthetic(video, weights_dir) -> np.ndarray:
    """LAION-style aesthetic score per frame (the paper's Aesthetic column), from local weights.

    ``weights_dir`` must hold ``clip/`` (a transformers CLIP vision model with projection, e.g.
    ViT-L/14 saved with ``save_pretrained``) and ``aesthetic_head.safetensors`` (the linear layers
    of the predictor as ``layers.<i>.weight`` / ``layers.<i>.bias``, applied in order to the
    L2-normalised image embedding). Returns ``(T,)``.
    """
    import torch
    import torch.nn.functional as F
    from safetensors.torch import load_file

    layout = "WEIGHTS/clip/{config.json, model.safetensors} and WEIGHTS/aesthetic_head.safetensors"
    root = _need(weights_dir, "aesthetic metric", layout)
    clip_dir = _need(root / "clip", "aesthetic metric (CLIP image encoder)", layout)
    head_file = _need(root / "aesthetic_head.safetensors", "aesthetic metric (predictor head)", layout)
    from transformers import CLIPVisionModelWithProjection

    clip = CLIPVisionModelWithProjection.from_pretrained(str(clip_dir), local_files_only=True).eval()
    head = load_file(str(head_file))
    n_layers = len({k.split(".")[1] for k in head if k.startswith("layers.")})
    v = torch.from_numpy(_video(video)).permute(0, 3, 1, 2)
    size = clip.config.image_size
    x = F.interpolate(v, size=(size, size), mode="bicubic", align_corners=False).clamp(0, 1)
    x = (x - torch.tensor(CLIP_MEAN)[:, None, None]) / torch.tensor(CLIP_STD)[:, None, None]
    with torch.no_grad():
        z = F.normalize(clip(pixel_values=x).image_embeds, dim=-1)
        for i in range(n_layers):
            z = z @ head[f"layers.{i}.weight"].float().T + head[f"layers.{i}.bias"].float()
    return z[:, 0].numpy()


def musiq(video, weights_path=None) -> np.ndarray:
    """MUSIQ clarity per frame (the paper's Clarity column) through pyiqa, from a local checkpoint.

    pyiqa is not a dependency (it needs torchvision, which has no CPU wheel on our machines):
    install it yourself, and pass the MUSIQ checkpoint file you downloaded as ``weights_path``.
    Returns ``(T,)``.
    """
    try:
        import pyiqa  # noqa: F401
    except ImportError as e:
        raise ImportError("the musiq metric needs the pyiqa package (pip install pyiqa; it requires "
                          "torchvision), plus a local MUSIQ checkpoint passed as weights_path") from e
    import torch

    path = _need(weights_path, "musiq metric", "a MUSIQ .pth checkpoint file for pyiqa")
    model = pyiqa.create_metric("musiq", as_loss=False, pretrained_model_path=str(path), device="cpu")
    v = torch.from_numpy(_video(video)).permute(0, 3, 1, 2)
    with torch.no_grad():
        return np.asarray([float(model(f[None])) for f in v])


MODEL_METRICS = {"aesthetic": aesthetic, "musiq": musiq}
