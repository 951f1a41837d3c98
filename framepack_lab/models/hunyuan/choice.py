"""What a session runs with: the real model or the tiny stand-in, and the first frame.

    choice = choose_backend(WEIGHTS_DIR)      # the weights folder if given and usable, else the stand-in
    print(choice.message)                     # which one, and why
    first = load_first_frame(IMAGE)           # (H, W, 3) in [0, 1], H and W multiples of 16
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ... import world
from .backend import HunyuanBackend
from .loading import check_offload, check_weights_dir, load_hunyuan
from .stand_in import tiny_backend


@dataclass
class BackendChoice:
    """The backend picked by :func:`choose_backend`.

    Attributes:
        backend: the :class:`~.backend.HunyuanBackend`.
        real: True for the released weights, False for the tiny random stand-in.
        message: which one it is and why, for the reader.
    """

    backend: HunyuanBackend
    real: bool
    message: str


def choose_backend(weights_dir: str | Path | None = None, *, offload: str = "auto", seed: int = 0) -> BackendChoice:
    """The released model from ``weights_dir`` when it is given, has the right layout
    (:func:`~.loading.check_weights_dir`) and a CUDA GPU is present; otherwise the tiny random
    stand-in (:func:`~.stand_in.tiny_backend` with ``seed``). ``message`` says which, and why.

    Errors while loading a valid folder (e.g. too little GPU memory) are raised, not hidden.
    """
    check_offload(offload)
    if weights_dir is None:
        why = "no WEIGHTS_DIR given"
    else:
        try:
            root = check_weights_dir(weights_dir)
        except (FileNotFoundError, ValueError) as e:
            why = f"WEIGHTS_DIR={str(weights_dir)!r} cannot be used: {e}"
        else:
            if torch.cuda.is_available():
                backend = load_hunyuan(root, device="cuda", offload=offload)
                return BackendChoice(backend, True, f"HunyuanVideo FramePack from {root} on "
                                     f"{torch.cuda.get_device_name()}, offload {backend.offload!r}.")
            why = f"WEIGHTS_DIR={str(weights_dir)!r} is set but this machine has no CUDA GPU"
    return BackendChoice(tiny_backend(seed), False, (
        f"TINY RANDOM WEIGHTS ({why}): the same diffusers classes at toy size, built in memory. Everything runs "
        "the real code path, so it checks the plumbing, not the pictures: the generated videos are noise. Set "
        "WEIGHTS_DIR on a GPU machine for the real model."))


def load_first_frame(image_path: str | Path | None = None, size: int = 512) -> np.ndarray:
    """A first frame for the real model: ``(H, W, 3)`` float32 in [0, 1], H and W cropped to
    multiples of 16 pixels.

    Args:
        image_path: an image file; ``None`` takes a held-out frame of the procedural world
            (:mod:`framepack_lab.world`), upscaled to about ``size x size`` (nearest neighbour).
        size: side of the world frame; at least the world's 64 pixels.
    """
    from PIL import Image

    if image_path is None:
        frame = world.video(world.HELDOUT_SEEDS.start + 11, 1)[0]  # (64, 64, 3)
        scale = size // frame.shape[0], size // frame.shape[1]
        if min(scale) < 1:
            raise ValueError(f"size={size} is smaller than the world's {frame.shape[0]}-pixel frames; use size >= "
                             f"{frame.shape[0]}")
        frame = np.kron(frame, np.ones((*scale, 1)))
    else:
        path = Path(image_path).expanduser()
        if not path.is_file():
            raise FileNotFoundError(f"no image at {path}; set IMAGE to an image file (or None for a world frame)")
        frame = np.asarray(Image.open(path).convert("RGB")) / 255.0
    H, W = (frame.shape[0] // 16) * 16, (frame.shape[1] // 16) * 16
    if H == 0 or W == 0:
        raise ValueError(f"image {frame.shape[1]}x{frame.shape[0]} is smaller than 16x16 pixels; use a larger one")
    return np.ascontiguousarray(frame[:H, :W]).astype(np.float32)
