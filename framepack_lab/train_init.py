"""Start a training run from an exported tiny checkpoint (``--init-from DIR``): a fine-tune.

``DIR`` is a folder :func:`~framepack_lab.models.tiny.save_tiny` wrote: the shipped
``framepack_lab/assets/tiny`` or a run's ``OUT/tiny``. The run takes three things from it:

- the autoencoder, with its latent statistics (the training banks are encoded with it and
  normalised with those statistics, so the DiT sees the latents it was trained on);
- the discrete-history codebooks;
- the EMA DiT weights, which start both the trained model and its EMA.

The optimiser starts fresh: an export keeps no AdamW moments, so give a fine-tune config a
warm-up. The config's ``model`` section must describe the checkpoint's model. The one allowed
difference is a part that starts as a no-op, switched on where the checkpoint has it off
(:data:`~framepack_lab.models.tiny.ZERO_INIT_FIELDS`, e.g. ``hidden_time_max``). Then the
fine-tune begins from exactly the checkpoint's predictions. Anything else is refused before any
work, naming what differs.
"""

from __future__ import annotations

import dataclasses
import hashlib
from dataclasses import dataclass
from pathlib import Path

import torch

from .models.tiny import ZERO_INIT_FIELDS, TinyConfig, TinyFramePack, read_tiny


@dataclass(frozen=True)
class InitCheckpoint:
    """What a run starts from (:func:`read_init`): float32 state dicts and where they came from."""

    dit: dict[str, torch.Tensor]
    ae: dict[str, torch.Tensor]
    codebooks: dict[int, torch.Tensor]  # {K: (K, C)}
    new_parts: tuple[str, ...]  # model fields the run switches on (their parts keep their zero init)
    ae_record: dict  # the checkpoint's autoencoder record (steps, held-out PSNR, ...)
    record: dict  # {"path", "sha256", "steps"}: written into the training record


def _file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def read_init(path: str | Path, model_config: TinyConfig, codebook_ks=()) -> InitCheckpoint:
    """Read the checkpoint in ``path`` (:func:`~framepack_lab.models.tiny.read_tiny`) and check it
    against the run's ``model_config`` and ``data.codebook_ks``.

    ``ValueError`` (before any training work) when the folder holds no checkpoint, its model
    differs from ``model_config`` other than by a :data:`ZERO_INIT_FIELDS` part switched on, or its
    codebooks are not ``codebook_ks`` (the DiT learnt the checkpoint's).
    """
    path = Path(path)
    try:
        files = read_tiny(path)
    except FileNotFoundError:
        raise ValueError(f"--init-from {path}: no exported tiny checkpoint there (need model.safetensors and "
                         "config.json, as in framepack_lab/assets/tiny or a run's OUT/tiny)") from None
    except ValueError as e:
        raise ValueError(f"--init-from {path}: {e}") from None
    have = files.config
    differ = [f.name for f in dataclasses.fields(TinyConfig) if getattr(have, f.name) != getattr(model_config, f.name)]
    bad = [n for n in differ if n not in ZERO_INIT_FIELDS or getattr(have, n)]
    if bad:
        detail = "; ".join(f"{n}: checkpoint {getattr(have, n)!r}, config {getattr(model_config, n)!r}" for n in bad)
        raise ValueError(f"--init-from {path}: the config's \"model\" section describes another model ({detail}). "
                         "Copy the checkpoint's model section; only a part that starts as a no-op may be switched "
                         f"on ({', '.join(ZERO_INIT_FIELDS)})")
    if sorted(files.codebooks) != sorted(codebook_ks):
        raise ValueError(f"--init-from {path}: its codebooks are K = {sorted(files.codebooks)} but the config's "
                         f"data.codebook_ks is {list(codebook_ks)}; the DiT learnt the checkpoint's codebooks, so "
                         "set codebook_ks to those")
    wanted = TinyFramePack(model_config).state_dict()
    extra = sorted(set(files.dit) - set(wanted))
    shapes = sorted(k for k in set(files.dit) & set(wanted) if files.dit[k].shape != wanted[k].shape)
    if extra or shapes:  # the config fields agree, so only a damaged or foreign file gets here
        raise ValueError(f"--init-from {path}: its DiT weights do not fit the model its config.json describes "
                         f"(unexpected {extra[:3]}, other shapes {shapes[:3]}); re-export the checkpoint")
    record = files.meta.get("training_record", {})
    return InitCheckpoint(
        dit=files.dit, ae=files.ae, codebooks=files.codebooks, new_parts=tuple(differ),
        ae_record=dict(record.get("autoencoder") or {}),
        record={"path": str(path), "sha256": _file_sha256(path / "model.safetensors"), "steps": record.get("steps")},
    )
