"""benchmarks/figures.sh (`make figures`): bad input is refused before any work, with the fix.

The full run is what a new checkpoint is scored with (tens of minutes); its smoke preset runs every
job for real in a few minutes, too long for `make test`, so here only the refusals are checked."""
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "benchmarks" / "figures.sh"


def _run(tmp_path, *args):
    return subprocess.run(["bash", str(SCRIPT), str(tmp_path / "out"), *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=30)


def test_unknown_preset_is_refused_before_any_work(tmp_path):
    r = _run(tmp_path, "", "fast")
    assert r.returncode == 2 and "PRESET must be full or smoke, not 'fast'" in r.stderr
    assert not (tmp_path / "out").exists()  # nothing half-written


def test_missing_checkpoint_is_refused_with_how_to_get_one(tmp_path):
    r = _run(tmp_path, str(tmp_path / "nowhere"), "smoke")
    assert r.returncode == 2 and "no checkpoint in" in r.stderr and "framepack_lab.train" in r.stderr
    assert not (tmp_path / "out").exists()


def test_missing_compare_checkpoint_is_refused(tmp_path):
    r = _run(tmp_path, "", "smoke", str(tmp_path / "other"))
    assert r.returncode == 2 and "no checkpoint in" in r.stderr and "other" in r.stderr
    assert not (tmp_path / "out").exists()


def test_usage_without_arguments():
    r = subprocess.run(["bash", str(SCRIPT)], cwd=ROOT, capture_output=True, text=True, timeout=30)
    assert r.returncode != 0 and "usage: figures.sh OUT" in r.stderr
