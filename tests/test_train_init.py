"""``train --init-from DIR``: a fine-tune starts from an exported checkpoint's autoencoder,
codebooks and DiT weights, switches on only zero-initialised parts, and refuses anything else
before any work."""

import json

import pytest
import torch
from safetensors.torch import load_file

from framepack_lab.train import Trainer, main, train
from test_train import log_lines, tiny_train_config


def base_config() -> dict:
    """The test recipe without hidden time, so a fine-tune can switch it on."""
    cfg = tiny_train_config()
    cfg["model"].update(hidden_time_max=0)
    return cfg


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    """A 3-step export to fine-tune."""
    out = tmp_path_factory.mktemp("base")
    return train(base_config(), out, steps=3, progress=False)


def finetune_config(**model) -> dict:
    cfg = base_config()
    cfg["model"].update(model)
    cfg["dit"].update(steps=2, warmup=2, phases=[])
    return cfg


def test_a_fine_tune_starts_from_the_checkpoint_exactly(base, tmp_path):
    saved = load_file(str(base / "model.safetensors"))
    trainer = Trainer(finetune_config(hidden_time_max=8), tmp_path, progress=False, init_from=base).setup()
    try:
        for k, v in trainer.model.state_dict().items():
            if k.startswith("hidden_mlp."):  # the new part: its output layer is zero, so a no-op
                continue
            assert torch.equal(v, saved[f"dit.{k}"].float()), k
        assert torch.equal(trainer.model.hidden_mlp[-1].weight, torch.zeros_like(trainer.model.hidden_mlp[-1].weight))
        for k, v in trainer.ema.state_dict().items():
            assert torch.equal(v, trainer.model.state_dict()[k]), k
        # the checkpoint's autoencoder and latent statistics, not refitted on the new bank
        for k, v in trainer.ae.state_dict().items():
            assert torch.equal(v, saved[f"ae.{k}"].float()), k
        assert sorted(trainer.codebooks) == [16, 64, 256]
        for k, v in trainer.codebooks.items():
            assert torch.equal(v, saved[f"codebook.{k}"].float()), k
        assert not any(d["stage"] == "ae" and "step" in d for d in log_lines(tmp_path))  # no autoencoder training
        trainer.run()
    finally:
        trainer.close()
    rec = json.loads((tmp_path / "tiny" / "config.json").read_text())["training_record"]
    assert rec["steps"] == 2
    assert rec["init_from"]["path"] == str(base) and rec["init_from"]["steps"] == 3
    assert rec["init_from"]["new_parts"] == ["hidden_time_max"] and len(rec["init_from"]["sha256"]) == 64
    assert rec["autoencoder"]["from"] == str(base)


def test_a_fine_tune_resumes_from_its_own_state(base, tmp_path):
    cfg = finetune_config()
    train(cfg, tmp_path, steps=1, progress=False, init_from=base)
    first = load_file(str(tmp_path / "state.safetensors"))
    train(cfg, tmp_path, resume=True, steps=2, progress=False, init_from=base)
    assert json.loads((tmp_path / "state.json").read_text())["step"] == 2
    rec = json.loads((tmp_path / "tiny" / "config.json").read_text())["training_record"]
    assert rec["init_from"]["path"] == str(base)  # kept across the resume
    assert not torch.equal(first["model.out.weight"], load_file(str(tmp_path / "state.safetensors"))["model.out.weight"])


@pytest.mark.parametrize("edit, match", [
    (lambda c: c["model"].update(width=64, rope_axes=[8, 12, 12]), r"width: checkpoint 32, config 64"),
    (lambda c: c["model"].update(history_noise=False), r"history_noise: checkpoint True, config False"),
    (lambda c: c["data"].update(codebook_ks=[16, 64]), r"codebooks are K = \[16, 64, 256\]"),
])
def test_a_config_that_does_not_describe_the_checkpoint_is_refused_before_any_work(base, tmp_path, edit, match):
    cfg = finetune_config()
    edit(cfg)
    with pytest.raises(ValueError, match=match):
        train(cfg, tmp_path, progress=False, init_from=base)
    assert not any(tmp_path.iterdir())  # nothing written


def test_a_part_the_checkpoint_already_has_cannot_be_changed(base, tmp_path):
    on = train(finetune_config(hidden_time_max=8), tmp_path / "on", progress=False, init_from=base)
    with pytest.raises(ValueError, match="hidden_time_max: checkpoint 8, config 16"):
        Trainer(finetune_config(hidden_time_max=16), tmp_path / "x", progress=False, init_from=on)


def test_cli_init_from(base, tmp_path, capsys):
    cfg_path = tmp_path / "cfg.json"
    cfg_path.write_text(json.dumps(finetune_config()))
    main(["--config", str(cfg_path), "--out", str(tmp_path / "ft"), "--init-from", str(base), "--no-progress"])
    assert "exported" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        main(["--config", str(cfg_path), "--out", str(tmp_path / "bad"), "--init-from", str(tmp_path / "none")])
    assert "no exported tiny checkpoint there" in capsys.readouterr().err
    assert not (tmp_path / "bad").exists()


def test_a_folder_whose_config_has_no_model_section_is_refused(base, tmp_path):
    import shutil

    fake = tmp_path / "fake"
    shutil.copytree(base, fake)
    (fake / "config.json").write_text(json.dumps({"training_record": {}}))
    with pytest.raises(ValueError, match='no "model" section'):
        Trainer(finetune_config(), tmp_path / "out", progress=False, init_from=fake)
    assert not (tmp_path / "out").exists()
