"""Two writers at once (issue 12): two `usmr prepare` into one cache folder, two
`usmr synthesize` into one output: one complete result, never a torn or mixed one."""

import pathlib
import subprocess
import threading
import time

import numpy as np
import pytest
from PIL import Image

from usmr_tf.atomic import exclusive
from usmr_tf.data.cache import load_prepared
from usmr_tf.training import testing

SAMPLE = testing.REPO / "examples" / "sample_data"


def _start(*args):
    return subprocess.Popen(testing.usmr_command(*args), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=testing.subprocess_env(),
                            cwd=testing.REPO)


def _both(procs, timeout=600):
    outs = [p.communicate(timeout=timeout) for p in procs]
    return [(p.returncode, out, err) for p, (out, err) in zip(procs, outs)]


def _hidden(folder):
    return sorted(p.name for p in pathlib.Path(folder).iterdir() if p.name.startswith("."))


def test_exclusive_makes_writers_take_turns(tmp_path):
    target = tmp_path / "out.png"
    events = []

    def writer(name, hold):
        with exclusive(target):
            events.append(f"{name} in")
            time.sleep(hold)
            events.append(f"{name} out")

    first = threading.Thread(target=writer, args=("a", 0.5))
    first.start()
    time.sleep(0.1)
    second = threading.Thread(target=writer, args=("b", 0))
    second.start()
    first.join()
    second.join()
    assert events == ["a in", "a out", "b in", "b out"]
    assert _hidden(tmp_path) == []  # the lock file is gone


def test_two_prepare_into_one_folder_give_one_dataset(tmp_path):
    out = tmp_path / "cache"
    args = ("prepare", SAMPLE / "usmr_sample.yaml", "--out", out, "--data-root", SAMPLE,
            "--quiet")
    results = _both([_start(*args), _start(*args)])
    for code, _, err in results:
        assert code == 0, err[-2000:]
    said = sorted("up to date" if "up to date" in out else "prepared" for _, out, _ in results)
    assert said == ["prepared", "up to date"]  # the second waited and reused the first's
    assert _hidden(tmp_path) == []
    reference = tmp_path / "reference"
    assert testing.run(testing.usmr_command(*args[:3], reference, *args[4:])).returncode == 0
    for modality in ("us", "mr"):
        for split in ("train", "test"):
            got, _ = load_prepared(out, split, modality=modality)
            want, _ = load_prepared(reference, split, modality=modality)
            np.testing.assert_array_equal(got, want)


def _images(folder, prefix, n, seed):
    folder.mkdir(parents=True)
    rng = np.random.default_rng(seed)
    for i in range(n):
        Image.fromarray(rng.integers(0, 255, (36, 44), dtype=np.uint8)).save(
            folder / f"{prefix}{i}.png")
    return folder


def _files(folder):
    return {p.name: p.read_bytes() for p in sorted(pathlib.Path(folder).iterdir())}


@pytest.mark.timeout(1200)
def test_two_synthesize_into_one_output_give_one_result(tmp_path, good_model):
    a = _images(tmp_path / "a", "a", 3, seed=1)
    b = _images(tmp_path / "b", "b", 3, seed=2)
    refs = {}
    for name, src in (("a", a), ("b", b)):
        done = testing.run(testing.usmr_command("synthesize", "--model", good_model, src,
                                                tmp_path / f"ref_{name}", "--quiet", "--align", "none",
                                                "--preview", tmp_path / f"ref_{name}.png"))
        assert done.returncode == 0, done.stderr[-2000:]
        refs[name] = (_files(tmp_path / f"ref_{name}"),
                      (tmp_path / f"ref_{name}.png").read_bytes())

    out, preview = tmp_path / "out" / "mr", tmp_path / "out" / "preview.png"
    for _ in range(2):  # twice: once into nothing, once replacing an earlier result
        results = _both([_start("synthesize", "--model", good_model, src, out, "--quiet", "--align", "none",
                                "--overwrite", "--preview", preview) for src in (a, b)])
        for code, _, err in results:
            assert code == 0, err[-2000:]
        got = _files(out)
        winner = "a" if "a0.png" in got else "b"
        assert got == refs[winner][0]  # all files of one run, none of the other
        assert preview.read_bytes() == refs[winner][1]  # and its preview, not the other's
        assert _hidden(out.parent) == []

    # Without --overwrite, the second of two runs fails cleanly and the first's result stays.
    single = tmp_path / "single.png"
    results = _both([_start("synthesize", "--model", good_model, src / f"{src.name}0.png",
                            single, "--quiet", "--align", "none") for src in (a, b)])
    codes = sorted(code for code, _, _ in results)
    assert codes == [0, 2]
    loser = next(err for code, _, err in results if code == 2)
    assert "already exists" in loser and "Traceback" not in loser
    winner = next(src for (code, _, _), src in zip(results, (a, b)) if code == 0)
    assert single.read_bytes() == refs[winner.name][0][f"{winner.name}0.png"]
