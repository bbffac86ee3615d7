"""Quiet by default (issue 9): no TensorFlow/CUDA/absl start-up lines from `usmr` on stderr."""

import re
import subprocess

import pytest
from newcomer_helpers import GLOG_LINE, NOISE, PRESET, SAMPLE, VENV_BIN, clean_env

from usmr_tf.cli import quiet

US = SAMPLE / "us" / "hc18" / "training_set" / "302_HC.png"


def _usmr(args, cwd, **env):
    return subprocess.run([str(VENV_BIN / "usmr"), *args], cwd=cwd, capture_output=True,
                          text=True, env=clean_env(**env), timeout=300)


def test_filter_drops_startup_lines_and_keeps_the_rest():
    text = (
        "WARNING: All log messages before absl::InitializeLog() is called are written to STDERR\n"
        "I0000 00:00:1796044838.107320    3397 port.cc:153] oneDNN custom operations are on.\n"
        "I0000 00:00:1796044838.108150    3397 cudart_stub.cc:31] Could not find cuda drivers\n"
        "E0000 00:00:1796044841.161426    3397 cuda_platform.cc:52] failed call to cuInit: x\n"
        "I0000 00:00:1796044884.948488    3773 cpu_feature_guard.cc:227] This TensorFlow binary\n"
        "To enable the following instructions: AVX2 FMA, in other operations, rebuild "
        "TensorFlow with the appropriate compiler flags.\n"
        "/x/y.py:3: UserWarning: input spacing is anisotropic, resample it first\n"
        "E0000 00:00:1796044841.161426    3397 saved_model_loader.cc:9] cannot read variables\n"
    )
    kept = quiet.filter_noise(text).splitlines()
    assert kept == ["/x/y.py:3: UserWarning: input spacing is anisotropic, resample it first",
                    "E0000 00:00:1796044841.161426    3397 saved_model_loader.cc:9] cannot read "
                    "variables"]


def test_verbose_env_values():
    assert quiet.verbose_requested({"USMR_VERBOSE": "1"})
    assert not quiet.verbose_requested({"USMR_VERBOSE": "0"})
    assert not quiet.verbose_requested({})


def test_cpu_synthesize_stderr_is_clean_and_verbose_brings_logging_back(tmp_path):
    out = tmp_path / "mr.png"
    args = ["synthesize", "--preset", PRESET, "--align-hc18", str(US), str(out)]
    proc = _usmr(args, tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert out.is_file() and "not for diagnosis" in proc.stdout
    assert not [n for n in NOISE if n in proc.stderr], proc.stderr
    assert not re.search(GLOG_LINE, proc.stderr), proc.stderr
    # The hidden lines are TensorFlow's own: --verbose (after the command) shows them again.
    loud = _usmr([*args, "--overwrite", "--verbose"], tmp_path)
    assert loud.returncode == 0, loud.stderr
    assert re.search(GLOG_LINE, loud.stderr), loud.stderr


@pytest.mark.parametrize("verbose", ["0", "1"])
def test_usmr_verbose_env_controls_tensorflow_startup_lines(verbose, tmp_path):
    code = ("from usmr_tf.cli import quiet\nquiet.install()\nimport tensorflow as tf\n"
            "import warnings\nwarnings.warn('an actionable warning')\n"
            "print(tf.reduce_sum(tf.ones(3)).numpy())")
    proc = subprocess.run([str(VENV_BIN / "python"), "-c", code], cwd=tmp_path,
                          capture_output=True, text=True, env=clean_env(USMR_VERBOSE=verbose),
                          timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "3.0"
    assert "an actionable warning" in proc.stderr
    assert bool(re.search(GLOG_LINE, proc.stderr)) == (verbose == "1"), proc.stderr


def test_errors_still_reach_stderr(tmp_path):
    proc = _usmr(["synthesize", "--preset", PRESET, str(tmp_path / "missing.png"),
                  str(tmp_path / "mr.png")], tmp_path)
    assert proc.returncode == 2
    assert proc.stderr.startswith("usmr synthesize: error:"), proc.stderr
    assert "missing.png" in proc.stderr


@pytest.mark.parametrize("command", [["presets"], ["--help"]])
def test_commands_without_a_model_do_not_import_tensorflow(command, tmp_path):
    code = ("import sys\nfrom usmr_tf.cli.main import main\n"
            f"try:\n    main({command!r})\nexcept SystemExit:\n    pass\n"
            "print('tensorflow' in sys.modules)")
    proc = subprocess.run([str(VENV_BIN / "python"), "-c", code], cwd=tmp_path,
                          capture_output=True, text=True, env=clean_env(), timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip().endswith("False")
    assert not [n for n in NOISE if n in proc.stderr]
