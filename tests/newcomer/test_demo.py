"""`make demo` on a bare clone (issue 9): the bundled sample set, no ../shared needed."""

import os
import re
import subprocess

import pytest
from newcomer_helpers import NOISE, REPO, SAMPLE, VENV_BIN, bare_copy, clean_env


def _demo_module():
    import importlib.util

    spec = importlib.util.spec_from_file_location("usmr_demo", REPO / "examples" / "demo.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_demo_on_the_sample_set_writes_figures(tmp_path, capsys):
    demo = _demo_module()
    assert demo.main(["--out", str(tmp_path)]) == 0  # default --data: the sample set
    out = capsys.readouterr().out
    assert "bundled sample set" in out and "not for diagnosis" in out
    images = sorted((SAMPLE / "us" / "hc18" / "training_set").glob("*HC.png"))
    for image in images:  # every sample US image is synthesized (all are held out)
        assert (tmp_path / f"{image.stem}_synth_mr.png").is_file()
    assert (tmp_path / "synthesis.png").stat().st_size > 10_000
    assert (tmp_path / "data_preview.png").is_file()
    assert (tmp_path / "raw_scan.png").stat().st_size > 10_000  # the raw path, located heads
    assert len(list(tmp_path.glob("*_raw_mr.png"))) == 4


def test_demo_without_data_folder_says_what_to_pass(tmp_path, capsys):
    demo = _demo_module()
    assert demo.main(["--data", str(tmp_path / "nowhere"), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("demo: error:") and "nowhere" in err and "--data" in err


@pytest.mark.slow
def test_make_demo_runs_on_a_bare_clone(tmp_path):
    """`make demo` in a copy of the repository with no ../shared beside it.

    The copy's code is used (PYTHONPATH; the shared venv's editable install points at this
    checkout), and make is told the venv is up to date (`-o STAMP`) instead of installing.
    """
    clone = bare_copy(tmp_path / "usmr-tf")
    assert not (tmp_path / "shared").exists()
    venv = VENV_BIN.parent
    stamp = venv / ".installed-stamp"
    proc = subprocess.run(["make", "-o", str(stamp), "demo", f"VENV={venv}"], cwd=clone,
                          capture_output=True, text=True, timeout=600,
                          env=clean_env(PYTHONPATH=str(clone)))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "bundled sample set" in proc.stdout
    assert f"{clone}/examples/sample_data" in proc.stdout.replace(os.sep, "/")
    assert (clone / "demo_output" / "synthesis.png").is_file()
    assert re.search(r"wrote \S*synthesis\.png .*preset fetal_hc18_v2", proc.stdout)
    assert not [n for n in NOISE if n in proc.stderr], proc.stderr
