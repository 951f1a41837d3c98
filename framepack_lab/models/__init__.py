"""Backends: the embedded tiny FramePack (``tiny``) and the HunyuanVideo adapter (``hunyuan``)."""
