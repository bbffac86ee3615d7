"""Helpers of the newcomer tests (issue 9): a bare copy of the repository, clean env."""

import os
import pathlib
import shutil
import subprocess
import sys

REPO = pathlib.Path(__file__).resolve().parents[2]
SAMPLE = REPO / "examples" / "sample_data"
PRESET = "fetal_hc18_v2"
VENV_BIN = pathlib.Path(sys.executable).parent

# TensorFlow start-up lines a user must not see by default (issue 9, measured on CPU).
NOISE = ("Could not find cuda drivers", "cuInit", "CUDA error", "absl::InitializeLog",
         "oneDNN", "cpu_feature_guard", "This TensorFlow binary is optimized")
GLOG_LINE = r"(?m)^[IWE]\d{4} [\d:. ]+\d+ \S+\.cc:\d+\]"


def bare_copy(dest):
    """What a `git clone` of this working tree holds: tracked and untracked-but-not-ignored
    files (a clone of the last commit would miss uncommitted work); no ../shared beside it."""
    files = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                           cwd=REPO, capture_output=True, check=True).stdout.split(b"\0")
    dest = pathlib.Path(dest)
    for name in filter(None, files):
        src = REPO / os.fsdecode(name)
        if src.is_file():  # deleted but not yet committed files are skipped
            target = dest / os.fsdecode(name)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, target)
    return dest


def clean_env(**extra):
    """The environment of a new user: no TF log settings, no USMR_* overrides, no PYTHONPATH."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("TF_", "USMR_", "PYTHON")) and k != "CUDA_VISIBLE_DEVICES"}
    env.update(extra)
    return env
