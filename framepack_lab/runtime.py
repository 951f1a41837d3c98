"""What every model shares to run here and to keep its weights: the device, the frame size, the file.

* :func:`resolve_device` turns ``"cpu"`` / ``"cuda"`` / ``"cuda:1"`` / ``"mps"`` / ``"auto"`` into a
  ``torch.device`` this machine has, or says what to use instead;
* :func:`latent_size` maps a frame size onto a model's latent grid, or says which sizes fit;
* :func:`describe_device` says which device a backend runs on, as every panel and notebook prints
  it (``"cpu"``, ``"cuda:0 (NVIDIA ...)"``);
* :func:`save_safetensors` writes a safetensors file atomically (a crash mid-write never leaves a
  half-written checkpoint where a good one was).

Used by the tiny model (:mod:`framepack_lab.models.tiny`), the training loop
(:mod:`framepack_lab.train`) and the HunyuanVideo adapter. Needs only torch and safetensors.
"""

from __future__ import annotations

import numbers
from pathlib import Path

import torch

DEVICE_CHOICES = "'cpu', 'cuda' (or 'cuda:N'), 'mps' or 'auto' (CUDA when available, else the CPU)"


def _available(device: torch.device) -> tuple[bool, str]:
    """Whether this torch and machine can run on ``device``, and how that was decided."""
    kind = device.type
    if kind == "cpu":
        return True, ""
    if kind == "cuda":
        if not torch.cuda.is_available():
            return False, "this machine has no CUDA GPU (torch.cuda.is_available() is False)"
        count = torch.cuda.device_count()
        if device.index is not None and device.index >= count:
            return False, f"this machine has {count} CUDA GPU(s) (cuda:0 .. cuda:{count - 1})"
        return True, ""
    if kind == "mps":
        if not torch.backends.mps.is_available():
            return False, "this torch has no MPS (Apple GPU) support here (torch.backends.mps.is_available() is False)"
        return True, ""
    module = getattr(torch, kind, None)  # xpu and other accelerators with a torch.<type> module
    is_available = getattr(module, "is_available", None)
    if callable(is_available):
        if not is_available():
            return False, f"this machine or torch build has no {kind} device (torch.{kind}.is_available() is False)"
        return True, ""
    return False, f"models cannot run on device type {kind!r}"


def resolve_device(device: "str | torch.device" = "auto", allowed: tuple[str, ...] | None = None,
                   advice: str = "") -> torch.device:
    """The ``torch.device`` to run on, checked against this machine.

    Args:
        device: ``"auto"`` (CUDA when available, else the CPU), or any torch device this machine
            has (``"cpu"``, ``"cuda"``, ``"cuda:1"``, ``"mps"``, ...), or a ``torch.device``.
        allowed: device types a model supports (e.g. ``("cuda", "cpu")``); ``None``: any.
        advice: appended to the error, e.g. what else to run on a machine without a GPU.

    Returns:
        The device.

    Raises:
        ValueError: an unknown device name, or one this machine (or this torch) cannot run on;
            the message says what to use instead.

    >>> resolve_device("cpu")
    device(type='cpu')
    """
    if isinstance(device, str) and device.strip().lower() == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError, ValueError):
        raise ValueError(f"unknown device {device!r}: use {DEVICE_CHOICES}") from None
    tail = f" {advice}" if advice else ""
    if allowed is not None and dev.type not in allowed:
        raise ValueError(f"device {str(dev)!r} is not supported here: use one of "
                         f"{', '.join(repr(a) for a in allowed)} or 'auto'.{tail}")
    ok, why = _available(dev)
    if not ok:
        gpu = ", or install a CUDA build of torch on a GPU machine" if dev.type == "cuda" else ""
        raise ValueError(f"device {str(dev)!r} was asked for but {why}; use device='cpu' or device='auto' "
                         f"(CUDA when available, else the CPU){gpu}.{tail}")
    return dev


def latent_size(height: int, width: int, downsample: int, model: str, encoder: str = "autoencoder",
                example: str = "64x64") -> tuple[int, int]:
    """Latent ``(h, w) = (height / downsample, width / downsample)`` of a frame, checked.

    The encoder downsamples by ``downsample`` and the base patch kernel (1, 2, 2) needs an even
    latent size, so height and width must be positive multiples of ``2 * downsample`` pixels.

    Args:
        height, width: the frame size in pixels.
        downsample: the encoder's spatial factor (4 for the tiny autoencoder, 8 for HunyuanVideo's VAE).
        model, encoder, example: named in the error (``"the tiny model"``, ``"autoencoder"``, ``"64x64"``).

    Raises:
        ValueError: naming the size, the multiple it needs and an example.
    """
    multiple = 2 * downsample
    ok = all(isinstance(v, numbers.Integral) and v >= multiple and v % multiple == 0 for v in (height, width))
    if not ok:
        raise ValueError(f"frame size {height}x{width}: {model} needs height and width that are positive "
                         f"multiples of {multiple} pixels (its {encoder} downsamples by {downsample} and the base "
                         f"patch kernel (1, 2, 2) needs an even latent size); e.g. {example}; resize or crop the frame")
    return int(height) // downsample, int(width) // downsample


def save_safetensors(tensors: dict[str, torch.Tensor], path: "str | Path") -> Path:
    """Write ``tensors`` to ``path`` atomically: to ``<path>.tmp`` first, then renamed over ``path``.

    Returns the path written.
    """
    from safetensors.torch import save_file

    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    save_file(tensors, str(tmp))
    tmp.replace(path)
    return path


def describe_device(backend_or_device) -> str:
    """The device a model runs on, as panels and notebooks print it: ``"cpu"``,
    ``"cuda:0 (NVIDIA H100 80GB HBM3)"``, ``"mps"``.

    Args:
        backend_or_device: a backend with a ``device`` attribute (the tiny model's
            :class:`~framepack_lab.models.tiny.TinyBackend`), a module or tensor whose parameters
            live on one device, a ``torch.device``, or a device name such as ``"cuda:0"``.

    Raises:
        ValueError: for an object that names no device (say which device it runs on, e.g. pass
            ``backend.device``).
    """
    dev = backend_or_device
    if not isinstance(dev, (str, torch.device)):
        found = getattr(dev, "device", None)
        if found is None and isinstance(dev, torch.nn.Module):
            found = next((p.device for p in dev.parameters()), None)
        if found is None:
            raise ValueError(f"cannot tell which device a {type(dev).__name__} runs on: it has no .device; pass "
                             "the device itself (e.g. describe_device(backend.device) or 'cpu')")
        dev = found
    try:
        dev = torch.device(dev)
    except (RuntimeError, TypeError, ValueError):
        raise ValueError(f"unknown device {dev!r}: use {DEVICE_CHOICES}") from None
    if dev.type == "cuda" and torch.cuda.is_available():
        index = torch.cuda.current_device() if dev.index is None else dev.index
        return f"cuda:{index} ({torch.cuda.get_device_name(index)})"
    return str(dev)
