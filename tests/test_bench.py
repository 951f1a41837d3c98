"""`make bench` in smoke size: one table, every figure present, every value a finite number."""

import math
import os
import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[1] / "benchmarks" / "bench.py"


def test_bench_smoke_prints_one_table_of_finite_figures():
    out = subprocess.run([sys.executable, str(BENCH), "--smoke"], capture_output=True, text=True, timeout=600,
                         env=dict(os.environ, HF_HUB_OFFLINE="1"))
    assert out.returncode == 0, out.stderr[-3000:]
    lines = out.stdout.strip().splitlines()
    table = [ln for ln in lines if ln.startswith("|")]
    assert lines[-len(table):] == table, "the table must be one block at the end of the output"
    header, rule, *rows = table
    assert [c.strip() for c in header.strip("|").split("|")] == ["figure", "value", "unit", "how"]
    assert set(rule) <= set("|-")
    figures = {}
    for row in rows:
        figure, value, unit, how = (c.strip() for c in row.strip("|").split("|", 3))
        figures[figure] = float(value)
        assert math.isfinite(figures[figure]), row
        assert figures[figure] >= 0 or figure.endswith("change"), row  # changes may be negative
        assert unit and how, row

    # smoke sizes: 9 frames, sections 2 and 3 (the full bench: 64 frames, 8 and 32 sections)
    expected = ["import framepack_lab", "import the quickstart's modules (torch included)",
                "time to first frame, quickstart", "generate 9 frames of 64x64",
                "peak memory, quickstart process", "peak memory, this bench process"]
    for n in (2, 3):
        expected += [f"section time at {n} sections, packed", f"section time at {n} sections, unpacked",
                     f"unpacked / packed at {n} sections"]
    expected += ["extra RSS of section 3, packed", "extra RSS of section 3, unpacked"]
    # step caching at the official demo's thresholds against the cache off
    expected += ["generate 9 frames, step cache off", "presence, step cache off", "drift, step cache off"]
    for t in ("0.1", "0.15"):
        expected += [f"generate 9 frames, step cache {t}", f"step cache {t}: speed-up",
                     f"step cache {t}: speed-up, CPU time", f"step cache {t}: evaluations skipped",
                     f"step cache {t}: presence change", f"step cache {t}: drift change",
                     f"step cache {t}: motion change"]
    assert sorted(figures) == sorted(expected)
    for key in ("time to first frame, quickstart", "generate 9 frames of 64x64", "peak memory, quickstart process",
                "section time at 3 sections, packed", "section time at 3 sections, unpacked"):
        assert figures[key] > 0, key
    for t in ("0.1", "0.15"):
        assert figures[f"step cache {t}: speed-up"] > 0 and figures[f"step cache {t}: speed-up, CPU time"] > 0
        assert 0 <= figures[f"step cache {t}: evaluations skipped"] <= 100
        assert -1 <= figures[f"step cache {t}: presence change"] <= 1
    # an RSS measured by the OS, not a tensor tally: at least the interpreter plus torch
    assert figures["peak memory, quickstart process"] > 50
