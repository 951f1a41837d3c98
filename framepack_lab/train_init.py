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
import json
from dataclasses import dataclass
from pathlib import Path

import torch

from .models.tiny import ZERO_INIT_FIELDS, TinyConfig, TinyFramePack


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


def read_init(path: str | Path, model_config: TinyConfig) -> InitCheckpoint:
    """Read and check the checkpoint in ``path`` against the run's ``model_config``.

    ``ValueError`` (before any training work) when the folder holds no checkpoint, or its model
    differs from ``model_config`` other than by a :data:`ZERO_INIT_FIELDS` part switched on.
    """
    from safetensors.torch import load_file

    path = Path(path)
    weights, cfg_file = path / "model.safetensors", path / "config.json"
    if not weights.exists() or not cfg_file.exists():
        raise ValueError(f"--init-from {path}: no exported tiny checkpoint there (need model.safetensors and "
                         "config.json, as in framepack_lab/assets/tiny or a run's OUT/tiny)")
    meta = json.loads(cfg_file.read_text())
    if not isinstance(meta.get("model"), dict):
        raise ValueError(f"--init-from {path}: its config.json has no \"model\" section; it was not written by "
                         "save_tiny (re-export it, or point at another checkpoint)")
    have = TinyConfig.from_dict(meta["model"])
    differ = [f.name for f in dataclasses.fields(TinyConfig) if getattr(have, f.name) != getattr(model_config, f.name)]
    bad = [n for n in differ if n not in ZERO_INIT_FIELDS or getattr(have, n)]
    if bad:
        detail = "; ".join(f"{n}: checkpoint {getattr(have, n)!r}, config {getattr(model_config, n)!r}" for n in bad)
        raise ValueError(f"--init-from {path}: the config's \"model\" section describes another model ({detail}). "
                         "Copy the checkpoint's model section; only a part that starts as a no-op may be switched "
                         f"on ({', '.join(ZERO_INIT_FIELDS)})")
    state = load_file(str(weights))
    dit = {k[4:]: v.float() for k, v in state.items() if k.startswith("dit.")}
    wanted = TinyFramePack(model_config).state_dict()
    extra = sorted(set(dit) - set(wanted))
    shapes = sorted(k for k in set(dit) & set(wanted) if dit[k].shape != wanted[k].shape)
    if extra or shapes:  # the config fields agree, so only a damaged or foreign file gets here
        raise ValueError(f"--init-from {path}: its DiT weights do not fit the model its config.json describes "
                         f"(unexpected {extra[:3]}, other shapes {shapes[:3]}); re-export the checkpoint")
    return InitCheckpoint(
        dit=dit,
        ae={k[3:]: v.float() for k, v in state.items() if k.startswith("ae.")},
        codebooks={int(k.split(".")[1]): v.float() for k, v in state.items() if k.startswith("codebook.")},
        new_parts=tuple(differ),
        ae_record=dict(meta.get("training_record", {}).get("autoencoder") or {}),
        record={"path": str(path), "sha256": _file_sha256(weights),
                "steps": meta.get("training_record", {}).get("steps")},
    )
