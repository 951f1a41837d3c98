"""The tiny random-weight stand-in: HunyuanVideo FramePack's classes at toy size, built in memory.

Tests, CI and notebook 06 without weights use :func:`tiny_backend`: the same diffusers and
transformers classes as the real model, with tiny random weights and in-memory word-level
tokenizers (no files, no network). They check the plumbing, not the pictures.
"""

from __future__ import annotations

import torch

from .backend import HunyuanBackend
from .loading import backend_from_components

TINY_WORDS = ("a the of and in on with to is at by from its their this that it his her "
              "cat dog bird penguin person man woman girl boy car ball sprite robot fish horse "
              "walks runs jumps dances flies swims moves turns spins falls rolls waves smiles looks "
              "snow grass sky water road street room forest beach city field garden stage "
              "red blue green yellow white black small big bright dark slow fast gentle camera "
              "video shows scene light style background close up wide shot").split()


def _tiny_tokenizer(max_length: int):
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    specials = ["<pad>", "<unk>", "<s>", "</s>"]
    vocab = {w: i for i, w in enumerate(specials + list(TINY_WORDS))}
    tok = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    return PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="<pad>", unk_token="<unk>", bos_token="<s>",
                                   eos_token="</s>", model_max_length=max_length)


def tiny_components(seed: int = 0, latent_channels: int = 4) -> dict:
    """Every component at toy size with random weights, built in memory (no files, no network).

    Same classes as the real model: a 1+1-layer FramePack transformer (heads 2 x 16, RoPE axes
    (4, 6, 6)), a 4-block HunyuanVideo VAE (8x space, 4x time), a 3-layer Llama, a 1-layer CLIP
    text model, a 1-layer SigLIP on 32x32 crops, word-level tokenizers, and a dynamic-shift scheduler.
    """
    with torch.random.fork_rng(devices=[]):  # seed the weights without touching the caller's RNG
        torch.manual_seed(seed)
        return _tiny_components(latent_channels)


def _tiny_components(latent_channels: int) -> dict:
    import transformers
    from diffusers import (AutoencoderKLHunyuanVideo, FlowMatchEulerDiscreteScheduler,
                           HunyuanVideoFramepackTransformer3DModel)

    tokenizer, tokenizer_2 = _tiny_tokenizer(1024), _tiny_tokenizer(77)
    vocab = len(tokenizer)
    llama = transformers.LlamaModel(transformers.LlamaConfig(
        vocab_size=vocab, hidden_size=16, intermediate_size=32, num_hidden_layers=3, num_attention_heads=2,
        num_key_value_heads=2, max_position_embeddings=1024, pad_token_id=0, bos_token_id=2, eos_token_id=3))
    clip = transformers.CLIPTextModel(transformers.CLIPTextConfig(
        vocab_size=vocab, hidden_size=8, intermediate_size=16, num_hidden_layers=1, num_attention_heads=2,
        max_position_embeddings=77, pad_token_id=0, bos_token_id=2, eos_token_id=3, projection_dim=8))
    siglip = transformers.SiglipVisionModel(transformers.SiglipVisionConfig(
        hidden_size=8, intermediate_size=16, num_hidden_layers=1, num_attention_heads=2, image_size=32,
        patch_size=16, num_channels=3))
    feature_extractor = transformers.SiglipImageProcessor(size={"height": 32, "width": 32})
    vae = AutoencoderKLHunyuanVideo(latent_channels=latent_channels, block_out_channels=(8, 8, 8, 8),
                                    layers_per_block=1, norm_num_groups=4)
    transformer = HunyuanVideoFramepackTransformer3DModel(
        in_channels=latent_channels, out_channels=latent_channels, num_attention_heads=2, attention_head_dim=16,
        num_layers=1, num_single_layers=1, num_refiner_layers=1, mlp_ratio=2.0, patch_size=2, patch_size_t=1,
        guidance_embeds=True, text_embed_dim=16, pooled_projection_dim=8, rope_axes_dim=(4, 6, 6),
        has_image_proj=True, image_proj_dim=8, has_clean_x_embedder=True)
    return {"transformer": transformer.eval(), "vae": vae.eval(), "text_encoder": llama.eval(),
            "text_encoder_2": clip.eval(), "tokenizer": tokenizer, "tokenizer_2": tokenizer_2,
            "image_encoder": siglip.eval(), "feature_extractor": feature_extractor,
            "scheduler": FlowMatchEulerDiscreteScheduler(use_dynamic_shifting=True)}


def tiny_backend(seed: int = 0, vae_tiling: bool = True, device: str | torch.device = "cpu",
                 dtype: torch.dtype = torch.float32) -> HunyuanBackend:
    """A :class:`~.backend.HunyuanBackend` over :func:`tiny_components`: the real classes and code
    path with random weights, for tests and CI. It checks the plumbing, not the pictures.

    Args:
        seed: seeds the random weights.
        vae_tiling: as :func:`~.loading.load_hunyuan`.
        device: ``"cpu"`` (default) or ``"cuda"`` (refused with advice on a machine without one).
        dtype: weights dtype of every model, e.g. ``torch.bfloat16`` as the released weights run.
    """
    if not isinstance(dtype, torch.dtype) or not dtype.is_floating_point:
        raise ValueError(f"dtype must be a floating torch dtype (torch.float32, torch.bfloat16, ...), got {dtype!r}")
    components = tiny_components(seed)
    for module in components.values():
        if isinstance(module, torch.nn.Module):  # nn.Module.to: diffusers' own .to warns about from_pretrained
            torch.nn.Module.to(module, dtype)
    backend = backend_from_components(components, device, "none", vae_tiling)
    backend.name = "hunyuan-tiny-random"
    return backend
