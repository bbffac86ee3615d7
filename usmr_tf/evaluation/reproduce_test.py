"""End-to-end Table 1 reproduction at toy scale, in a subprocess (op determinism is global)."""

import json
import math
import os
import subprocess
import sys

import pytest

from usmr_tf.errors import ConfigError
from usmr_tf.evaluation import reproduce as rp

SCRIPT = r"""
import sys
from usmr_tf.evaluation import reproduce as rp
budget = rp.Budget(steps=2, batch_size=4, image_size=32, base_filters=4, depth=2, seed=3)
for out in sys.argv[1:]:
    rp.reproduce("phantoms", out, budget=budget, models=("cyclegan", "ae"), n_eval=4,
                 n_reference=6, registration_size=32, phantom_counts=(24, 24),
                 work_dir=out + "-work")
"""
METRICS = ["diversity", "deformation", "registration_nmi", "swd", "structure", "mae", "psnr",
           "ssim"]


def test_toy_reproduction_is_finite_shaped_like_table1_and_deterministic(tmp_path, repo_root):
    outs = [str(tmp_path / "a"), str(tmp_path / "b")]
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    proc = subprocess.run([sys.executable, "-c", SCRIPT, *outs], cwd=repo_root, env=env,
                          capture_output=True, text=True, timeout=170)
    assert proc.returncode == 0, proc.stderr[-3000:]

    tables = [(tmp_path / n / "table1_phantoms.md").read_text() for n in "ab"]
    records = [json.loads((tmp_path / n / "table1_phantoms.json").read_text()) for n in "ab"]
    lines = [line for line in tables[0].splitlines() if line.startswith("|")]
    assert [c.strip() for c in lines[0].strip("|").split("|")] == ["Method", "Identity (US)", "AE",
                                                                    "CycleGAN", "Real"]
    assert len(lines) == 2 + len(METRICS)
    results = records[0]["results"]
    for column in ("ae", "cyclegan"):
        for key in METRICS:
            assert math.isfinite(results[column][key]), (column, key)
        assert records[0]["models"][column]["final_logs"]  # it did train
    assert "mae" not in results["real"] and math.isfinite(results["real"]["swd"])
    assert results["ae"]["mae"] != results["cyclegan"]["mae"]
    assert results["identity"]["diversity"] == 1.0 and results["identity"]["structure"] > 0.99
    assert records[0]["budget"]["steps"] == 2 and records[0]["budget_kind"] == "steps"

    # Same inputs and seed: the same table and numbers (timings aside).
    table_lines = [[line for line in t.splitlines() if line.startswith("|")] for t in tables]
    assert table_lines[0] == table_lines[1]
    assert records[0]["results"] == records[1]["results"]
    png = (tmp_path / "a" / "table1_phantoms.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) < 300_000


def test_budget_and_arguments_are_checked_before_training(tmp_path):
    with pytest.raises(ConfigError, match="steps"):
        rp.Budget(steps=0)
    with pytest.raises(ConfigError, match="multiple of 2"):
        rp.Budget(image_size=40, depth=4)
    with pytest.raises(ConfigError, match="unknown model"):
        rp.reproduce("phantoms", tmp_path, models=("unet",))
    with pytest.raises(ConfigError, match="data must be one of"):
        rp.reproduce("mri", tmp_path)


def test_cli_names_a_missing_cache_exits_2_and_writes_nothing(tmp_path, repo_root):
    missing = tmp_path / "no_such_cache"
    out = tmp_path / "out"
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    proc = subprocess.run(
        [sys.executable, "examples/reproduce_table1.py", "--data", "real", "--prepared",
         str(missing), "--out", str(out), "--work-dir", str(tmp_path / "work")],
        cwd=repo_root, env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert str(missing) in proc.stderr and "error:" in proc.stderr
    assert not out.exists()
