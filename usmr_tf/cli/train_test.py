"""`usmr train` end to end in subprocesses: user errors, and resuming a SIGKILLed run."""

import csv
import json
import re
import signal
import subprocess
import time

import pytest

from usmr_tf.cli import main as cli
from usmr_tf.training import testing


@pytest.mark.parametrize("args, words", [
    (["--recipe", "no/such.yaml"], "recipe file not found"),
    (["--recipe", testing.QUICK, "--set", "training.epochz=2"], "unknown key `training.epochz`"),
    (["--recipe", testing.QUICK, "--set", "model.name=transformer"], "transformer"),
    (["--recipe", testing.QUICK, "--set", "model.no_such_arg=1"], "no_such_arg"),
    (["--recipe", testing.QUICK, "--set", "training.batch_size=-1"], "training.batch_size"),
])
def test_bad_recipe_exits_2_with_a_clear_error(tmp_path, capsys, args, words):
    code = cli.main(["train", "--out", str(tmp_path / "run"), *map(str, args)])
    err = capsys.readouterr().err
    assert code == 2, err
    assert "usmr train: error:" in err and words in err
    assert not (tmp_path / "run" / "model.keras").exists()


def test_bad_yaml_file_exits_2_from_the_command_line(tmp_path):
    bad = tmp_path / "broken.yaml"
    bad.write_text("model:\n  name: ours\n training: [\n")
    proc = testing.run(testing.usmr_command("train", "--recipe", bad, "--out", tmp_path / "r"))
    assert proc.returncode == 2
    assert "broken.yaml: not a valid YAML recipe" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_multiworker_without_tf_config_exits_2(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("TF_CONFIG", raising=False)
    code = cli.main(["train", "--recipe", str(testing.QUICK), "--out", str(tmp_path / "r"),
                     "--strategy", "multiworker"])
    assert code == 2 and "TF_CONFIG" in capsys.readouterr().err


def _epochs_in_csv(path):
    with open(path, newline="") as f:
        return [int(row["epoch"]) for row in csv.DictReader(f)]


@pytest.mark.slow  # ~60 s: a CLI run killed and resumed; the in-process resume test stays default
def test_killed_run_resumes_from_its_backup(tmp_path):
    out = tmp_path / "run"
    epochs = 4
    cmd = testing.train_command(out, *testing.TINY, f"training.epochs={epochs}",
                                "training.steps_per_epoch=6", "logging.image_every=1",
                                "logging.verbose=2")
    metadata = out / "backup" / "state.json"  # usmr_tf/training/backup.py
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env=testing.subprocess_env(), cwd=testing.REPO)
    try:
        deadline = time.monotonic() + 240
        while not metadata.exists() and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.02)
        assert proc.poll() is None, f"run ended before its first backup:\n{proc.stdout.read()}"
        assert metadata.exists(), "no backup within the time limit"
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.stdout.close()
    assert proc.returncode == -signal.SIGKILL
    done = json.loads(metadata.read_text())["epoch"]  # epochs finished before the kill
    assert 1 <= done < epochs
    assert _epochs_in_csv(out / "history.csv") == list(range(done))
    assert not (out / "model.keras").exists()

    resumed = testing.run(cmd)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    started = [int(m) for m in re.findall(r"Epoch (\d+)/%d" % epochs, resumed.stdout)]
    assert started and started[0] == done + 1  # Keras counts from 1: resumed, not restarted
    assert _epochs_in_csv(out / "history.csv") == list(range(epochs))
    assert (out / "model.keras").exists() and (out / "final.weights.h5").exists()
    assert not (out / "backup").exists()  # removed once fit completes
    assert f"epochs {done}->{epochs}" in resumed.stdout
