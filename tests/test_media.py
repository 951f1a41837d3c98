"""framepack_lab.media: an mp4 round trip through mediapy with imageio-ffmpeg's bundled ffmpeg."""

from __future__ import annotations

import mediapy
import numpy as np
import pytest

from framepack_lab import media


@pytest.fixture
def bundled_ffmpeg():
    """Points mediapy at imageio-ffmpeg's binary even if a system ffmpeg exists; restores after."""
    exe = media.ensure_ffmpeg(bundled=True)
    yield exe
    mediapy.set_ffmpeg("ffmpeg")  # mediapy's default


def _synthetic_video(t: int = 12, h: int = 32, w: int = 48) -> np.ndarray:
    """(T, H, W, 3) uint8: each frame a flat colour that changes with t (codec-friendly)."""
    frames = np.empty((t, h, w, 3), np.uint8)
    for i in range(t):
        frames[i] = (20 + 15 * i, 200 - 10 * i, 128)
    return frames


def test_ensure_ffmpeg_bundled_is_imageio_binary(bundled_ffmpeg):
    import imageio_ffmpeg

    assert bundled_ffmpeg == imageio_ffmpeg.get_ffmpeg_exe()
    assert mediapy.video_is_available()


def test_mp4_round_trip(tmp_path, bundled_ffmpeg):
    frames = _synthetic_video()
    path = media.write_video(tmp_path / "sub" / "clip.mp4", frames, fps=8)
    assert path.is_file() and path.stat().st_size > 0

    video = media.read_video(path)
    assert video.shape == frames.shape
    assert video.dtype == np.uint8
    assert video.metadata.num_images == len(frames)
    assert video.metadata.fps == pytest.approx(8.0)
    # lossy H.264 + yuv420p: flat colours come back within a few levels
    err = np.abs(video.astype(np.int16) - frames.astype(np.int16))
    assert err.mean() < 3 and err.max() < 12


def test_float_frames_and_tensor_input(tmp_path, bundled_ffmpeg):
    torch = pytest.importorskip("torch")
    frames = _synthetic_video(t=6).astype(np.float32) / 255.0  # float in [0, 1]
    path = media.write_video(tmp_path / "clip.mp4", torch.from_numpy(frames), fps=4)
    video = media.read_video(path)
    assert video.shape == frames.shape
    assert np.abs(video / 255.0 - frames).mean() < 3 / 255


def test_bad_inputs(tmp_path):
    with pytest.raises(ValueError, match=r"\(T, H, W, 3\)"):
        media.write_video(tmp_path / "x.mp4", np.zeros((4, 3, 16, 16), np.uint8))
    with pytest.raises(FileNotFoundError):
        media.read_video(tmp_path / "missing.mp4")
