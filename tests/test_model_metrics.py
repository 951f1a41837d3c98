"""Model-based metrics: clear errors without weights, and the plumbing with tiny local weights."""

import numpy as np
import pytest
import torch

from framepack_lab import metrics, world


def test_aesthetic_without_weights_says_what_to_provide(tmp_path):
    with pytest.raises(FileNotFoundError, match="aesthetic_head.safetensors"):
        metrics.aesthetic(world.video(world.HELDOUT_SEEDS.start, 2), tmp_path / "nowhere")
    (tmp_path / "clip").mkdir()
    with pytest.raises(FileNotFoundError, match="predictor head"):
        metrics.aesthetic(world.video(world.HELDOUT_SEEDS.start, 2), tmp_path)


def test_aesthetic_runs_on_local_tiny_weights(tmp_path):
    from safetensors.torch import save_file
    from transformers import CLIPVisionConfig, CLIPVisionModelWithProjection

    cfg = CLIPVisionConfig(hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=2,
                           image_size=32, patch_size=8, projection_dim=16)
    torch.manual_seed(0)
    CLIPVisionModelWithProjection(cfg).save_pretrained(tmp_path / "clip")
    save_file({"layers.0.weight": torch.randn(8, 16), "layers.0.bias": torch.zeros(8),
               "layers.1.weight": torch.randn(1, 8), "layers.1.bias": torch.zeros(1)},
              str(tmp_path / "aesthetic_head.safetensors"))
    v = world.video(world.HELDOUT_SEEDS.start, 3)
    scores = metrics.aesthetic(v, tmp_path)
    assert scores.shape == (3,) and np.isfinite(scores).all()
    assert np.allclose(scores, metrics.aesthetic(v, tmp_path))  # deterministic
    assert not np.allclose(scores[0], metrics.aesthetic(np.flip(v, axis=1).copy(), tmp_path)[0])


def test_musiq_without_pyiqa_or_weights_is_a_clear_error():
    v = world.video(world.HELDOUT_SEEDS.start, 2)
    try:
        import pyiqa  # noqa: F401
    except ImportError:
        with pytest.raises(ImportError, match="pyiqa"):
            metrics.musiq(v, "missing.pth")
    else:
        with pytest.raises(FileNotFoundError, match="MUSIQ"):
            metrics.musiq(v, "missing.pth")
