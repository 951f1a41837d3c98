"""`accelerate launch -m framepack_lab.train` trains one model with DistributedDataParallel: two
CPU processes (gloo) draw different batches, average their gradients, end with identical weights,
and only rank 0 writes the log, the checkpoint and the export."""

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from framepack_lab.train import RANK_SEED_STRIDE, DistEnv, dist_env

ACCELERATE = Path(sys.executable).with_name("accelerate")
TIMEOUT_S = 120


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
@pytest.mark.skipif(not ACCELERATE.exists(), reason="accelerate's launcher is not installed in this environment")
def test_accelerate_launch_trains_with_two_processes(tmp_path):
    out = tmp_path / "run"
    # accelerate's --cpu flag runs one process unless mpirun is set up; --multi_gpu launches
    # torchrun-style processes, which use gloo on a machine without GPUs
    cmd = [str(ACCELERATE), "launch", "--multi_gpu", "--num_processes", "2", "--num_machines", "1",
           "--mixed_precision", "no", "--dynamo_backend", "no", "--main_process_port", str(_free_port()),
           "-m", "framepack_lab.train", "--preset", "smoke", "--out", str(out), "--steps", "3",
           "--device", "cpu", "--no-progress"]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1", "CUDA_VISIBLE_DEVICES": ""}
    r = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=TIMEOUT_S)
    assert r.returncode == 0, r.stderr[-3000:]
    assert r.stdout.count("exported") == 1  # rank 0 only

    log = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    assert sum(d["stage"] == "ae" and d.get("done", False) for d in log) == 1  # stage 1 once, on rank 0
    assert sum("start" in d for d in log) == 1
    assert {"stage": "ddp", "world_size": 2, "backend": "gloo"} in log
    first = next(d for d in log if d["stage"] == "dit" and d.get("step") == 0)
    a, b = first["rank_losses"]
    assert a != b  # each rank drew its own batch
    assert first["loss"] == pytest.approx((a + b) / 2)
    end = log[-1]
    assert end["stage"] == "ddp" and end["step"] == 3 and end["replicas_identical"] is True
    assert end["weight_sums"][0] == end["weight_sums"][1]

    assert json.loads((out / "state.json").read_text())["step"] == 3  # one checkpoint, at the end
    assert sorted(p.name for p in out.iterdir() if p.name.startswith("state")) == ["state.json", "state.safetensors"]
    rec = json.loads((out / "tiny" / "config.json").read_text())["training_record"]
    assert rec["world_size"] == 2 and rec["steps"] == 3


def test_dist_env_reads_the_launcher_variables():
    assert dist_env({}) == DistEnv(0, 1, 0) and not dist_env({}).distributed
    env = dist_env({"RANK": "3", "WORLD_SIZE": "4", "LOCAL_RANK": "1"})
    assert env == DistEnv(3, 4, 1) and env.distributed
    with pytest.raises(ValueError, match="inconsistent launch environment: RANK=4, WORLD_SIZE=4"):
        dist_env({"RANK": "4", "WORLD_SIZE": "4"})
    with pytest.raises(ValueError, match="must be whole numbers"):
        dist_env({"RANK": "zero", "WORLD_SIZE": "2"})
    assert RANK_SEED_STRIDE > 100_000  # rank seeds stay apart from the seed + step of resumed runs
