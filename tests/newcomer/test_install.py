"""Presets travel with the package (issue 9): a non-editable `pip install .` finds them.

Honest but quick: the package is built from a bare copy of this tree and installed with
`--no-deps --no-build-isolation --no-index` into a fresh venv whose only extra path is this
venv's site-packages (a `.pth` line appended after its own, so TensorFlow & co. are found
but `usmr_tf` comes from the fresh install; the editable finder of this venv is not loaded).
Everything then runs from a folder outside any checkout.
"""

import hashlib
import json
import pathlib
import shutil
import site
import subprocess
import sys

import pytest
from newcomer_helpers import NOISE, PRESET, SAMPLE, bare_copy, clean_env


def _tree_digest(root):
    return {p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    base = tmp_path_factory.mktemp("install")
    source = bare_copy(base / "src")
    # Whatever saved_models/ holds at build time is shipped: a second preset added now too.
    shutil.copytree(source / "saved_models" / PRESET, source / "saved_models" / "zz_copy")
    venv = base / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    purelib = subprocess.run([str(venv / "bin" / "python"), "-c",
                              "import sysconfig; print(sysconfig.get_path('purelib'))"],
                             capture_output=True, text=True, check=True).stdout.strip()
    (venv / "lib").joinpath(purelib.split("/lib/", 1)[1], "zz_usmr_test_deps.pth").write_text(
        "\n".join(site.getsitepackages()) + "\n")
    subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "install", "-q", "--no-deps",
                    "--no-build-isolation", "--no-index", str(source)],
                   check=True, env=clean_env(), timeout=600, cwd=base)
    work = base / "elsewhere"
    work.mkdir()
    return {"venv": venv, "source": source, "work": work}


def _run(installed, *args):
    proc = subprocess.run([*args], cwd=installed["work"], capture_output=True, text=True,
                          env=clean_env(), timeout=600)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc


@pytest.mark.slow
def test_from_preset_uses_the_packaged_copy_of_saved_models(installed):
    code = ("import json, usmr_tf, numpy as np\n"
            "from usmr_tf.presets import presets_dir, list_presets\n"
            f"m = usmr_tf.from_preset({PRESET!r})\n"
            "y = m(np.zeros((1, m.image_size, m.image_size, 1), np.float32))\n"
            "print(json.dumps({'module': usmr_tf.__file__, 'dir': str(presets_dir()),\n"
            "                  'presets': list_presets(), 'shape': list(y.shape)}))")
    proc = _run(installed, str(installed["venv"] / "bin" / "python"), "-c", code)
    info = json.loads(proc.stdout.strip().splitlines()[-1])
    assert info["module"].startswith(str(installed["venv"])), info
    assert info["dir"].startswith(str(installed["venv"])) and info["dir"].endswith("_presets")
    assert info["presets"] == sorted([PRESET, "fetal_head_locator", "zz_copy"])
    assert info["shape"][0] == 1
    # The shipped files are those of saved_models/ at build time, TF Serving layout kept.
    packaged = _tree_digest(pathlib.Path(info["dir"]) / PRESET)
    assert packaged == _tree_digest(installed["source"] / "saved_models" / PRESET)
    assert any(name.endswith("/saved_model.pb") and name[0].isdigit() for name in packaged)


@pytest.mark.slow
def test_usmr_presets_and_synthesize_preset_from_any_folder(installed):
    usmr = str(installed["venv"] / "bin" / "usmr")
    listing = _run(installed, usmr, "presets").stdout
    assert PRESET in listing and "zz_copy" in listing
    us = SAMPLE / "us" / "hc18" / "training_set" / "456_HC.png"
    out = installed["work"] / "mr.png"
    proc = _run(installed, usmr, "synthesize", "--preset", PRESET, "--align-hc18", str(us),
                str(out))
    assert out.is_file() and "not for diagnosis" in proc.stdout
    assert not [n for n in NOISE if n in proc.stderr], proc.stderr
