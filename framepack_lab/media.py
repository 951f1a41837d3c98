"""Video in and out through mediapy, with an ffmpeg that is always there.

mediapy drives an ``ffmpeg`` program for every video it reads, writes or shows. Many machines
(CI images, fresh laptops) have none, so :func:`ensure_ffmpeg` points mediapy at the static binary
that the ``imageio-ffmpeg`` wheel bundles. The helpers below call it first, so a notebook can just::

    from framepack_lab import media
    media.show_video(frames, fps=30)            # frames: (T, H, W, 3)
    media.write_video("out.mp4", frames, fps=30)
    video = media.read_video("out.mp4")          # (T, H, W, 3) uint8, video.metadata.fps

Version note: mediapy 1.2.x passes ``-vsync`` to ffmpeg when reading; ffmpeg 8+ removed that
option, so imageio-ffmpeg 0.8.x (bundles ffmpeg 9) cannot read videos through mediapy.
pyproject.toml pins ``imageio-ffmpeg<0.7`` (0.6.0 bundles ffmpeg 7.0.2, which writes and reads).

Frames are ``(T, H, W, 3)`` RGB, either ``uint8`` in [0, 255] or float in [0, 1] (values outside
are clipped); ``(T, H, W)`` is read as grayscale. Torch tensors are accepted and moved to the CPU.
libx264 with yuv420p (mediapy's default) needs even H and W.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import mediapy
import numpy as np

__all__ = ["ensure_ffmpeg", "write_video", "read_video", "show_video"]

DEFAULT_FPS = 30.0  # FramePack's (HunyuanVideo's) frame rate


def ensure_ffmpeg(bundled: bool = False) -> str:
    """Makes sure mediapy has an ffmpeg to run; returns the program mediapy will use.

    If mediapy's configured program (``"ffmpeg"`` unless someone called ``mediapy.set_ffmpeg``)
    is not found on the PATH, or ``bundled`` is True, mediapy is pointed at the binary shipped
    with imageio-ffmpeg (``imageio_ffmpeg.get_ffmpeg_exe()``, which honours the
    ``IMAGEIO_FFMPEG_EXE`` environment variable).

    Args:
      bundled: use imageio-ffmpeg's binary even when a system ffmpeg exists (tests use this so
        they exercise the same binary everywhere).

    Returns:
      The path or name of the ffmpeg program mediapy now uses.

    Raises:
      FileNotFoundError: no ffmpeg on the PATH and imageio-ffmpeg has no binary for this platform.
    """
    if not bundled and mediapy.video_is_available():
        search = getattr(mediapy, "_search_for_ffmpeg_path", None)  # private; the path it found
        return (search() if search else None) or "ffmpeg"
    try:
        import imageio_ffmpeg

        exe = imageio_ffmpeg.get_ffmpeg_exe()
    except (ImportError, RuntimeError) as e:
        raise FileNotFoundError(
            "mediapy needs an ffmpeg: install one on your PATH (apt install ffmpeg, "
            "conda install -c conda-forge ffmpeg) or `pip install 'imageio-ffmpeg<0.7'` "
            f"into this environment ({e})"
        ) from e
    mediapy.set_ffmpeg(exe)
    return exe


def _as_frames(frames: Any) -> np.ndarray:
    """(T, H, W, 3) or (T, H, W) array from a numpy array, torch tensor or list of images."""
    if hasattr(frames, "detach"):  # torch.Tensor, without importing torch
        frames = frames.detach().cpu()
        frames = (frames.float() if frames.is_floating_point() else frames).numpy()  # bf16 -> f32
    frames = np.asarray(frames)
    if frames.ndim not in (3, 4) or (frames.ndim == 4 and frames.shape[-1] != 3):
        raise ValueError(
            f"expected frames of shape (T, H, W, 3) or (T, H, W), got {frames.shape}; "
            "a (T, 3, H, W) tensor needs .permute(0, 2, 3, 1) first"
        )
    if frames.shape[0] == 0:
        raise ValueError("expected at least one frame, got T=0")
    return frames


def write_video(path: str | Path, frames: Any, fps: float = DEFAULT_FPS, **kwargs: Any) -> Path:
    """Writes frames to a video file (H.264 .mp4 by default; .gif also works).

    Args:
      path: output file; its folder is created if missing.
      frames: ``(T, H, W, 3)`` uint8 in [0, 255] or float in [0, 1]; ``(T, H, W)`` grayscale.
      fps: frames per second.
      **kwargs: passed to ``mediapy.write_video`` (e.g. ``crf=18``, ``codec="gif"``).

    Returns:
      The path written.

    Example:
      >>> ramp = np.linspace(0, 1, 8)[:, None, None, None] * np.ones((8, 16, 16, 3))
      >>> write_video("build/ramp.mp4", ramp, fps=8)  # fades from black to white
    """
    ensure_ffmpeg()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    mediapy.write_video(path, _as_frames(frames), fps=fps, **kwargs)
    return path


def read_video(path: str | Path, **kwargs: Any) -> np.ndarray:
    """Reads a video file into memory.

    Args:
      path: a video file.
      **kwargs: passed to ``mediapy.read_video`` (e.g. ``output_format="gray"``).

    Returns:
      ``(T, H, W, 3)`` uint8 array; ``.metadata`` holds ``num_images``, ``shape``, ``fps``.

    Raises:
      FileNotFoundError: the file does not exist.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no video at {path}; write one with framepack_lab.media.write_video")
    ensure_ffmpeg()
    return mediapy.read_video(path, **kwargs)


def show_video(frames: Any, fps: float = DEFAULT_FPS, **kwargs: Any) -> str | None:
    """Shows frames as an inline video in a notebook.

    Args:
      frames: ``(T, H, W, 3)`` uint8 in [0, 255] or float in [0, 1]; ``(T, H, W)`` grayscale.
      fps: frames per second.
      **kwargs: passed to ``mediapy.show_video`` (e.g. ``title=``, ``width=``, ``codec="gif"``,
        ``return_html=True``).

    Returns:
      The HTML string if ``return_html=True``, else None.
    """
    ensure_ffmpeg()
    return mediapy.show_video(_as_frames(frames), fps=fps, **kwargs)
