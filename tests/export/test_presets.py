"""`from_preset` / `usmr presets` / `usmr synthesize --preset` on a presets folder made here."""

import json

import numpy as np
import pytest

import usmr_tf
from usmr_tf.cli import main as cli
from usmr_tf.errors import ConfigError

IMAGE_SIZE = 32  # tests/export/conftest.py builds the tiny model at this size


@pytest.fixture
def presets(exported, monkeypatch):
    root = exported.parent.parent  # <root>/tiny/1
    (root / "tiny" / "MODEL_CARD.md").write_text("# Model card: tiny\n\nSummary: a tiny test model\n")
    monkeypatch.setenv("USMR_PRESETS_DIR", str(root))
    return root


def test_from_preset_loads_and_predicts(presets):
    model = usmr_tf.from_preset("tiny")
    assert model.image_size == IMAGE_SIZE
    us = np.linspace(-1, 1, IMAGE_SIZE * IMAGE_SIZE, dtype=np.float32).reshape(1, IMAGE_SIZE,
                                                                               IMAGE_SIZE, 1)
    mr = model(us)
    assert mr.shape == us.shape and np.isfinite(mr).all()


def test_unknown_preset_lists_known_ones(presets):
    with pytest.raises(ConfigError, match=r"unknown preset 'nope'.*tiny"):
        usmr_tf.from_preset("nope")


def test_presets_cli_lists_summary(presets, capsys):
    assert cli.main(["presets"]) == 0
    out = capsys.readouterr().out
    assert "tiny" in out and "a tiny test model" in out


def test_synthesize_with_unknown_preset_exits_2(presets, tmp_path, capsys):
    from PIL import Image

    png = tmp_path / "us.png"
    Image.fromarray(np.full((40, 50), 90, np.uint8)).save(png)
    code = cli.main(["synthesize", "--preset", "nope", str(png), str(tmp_path / "mr.png")])
    assert code == 2
    assert "unknown preset" in capsys.readouterr().err
    assert not (tmp_path / "mr.png").exists()


def test_synthesize_with_preset_writes_png(presets, tmp_path):
    from PIL import Image

    png = tmp_path / "us.png"
    Image.fromarray((np.random.default_rng(0).random((40, 50)) * 255).astype(np.uint8)).save(png)
    assert cli.main(["synthesize", "--preset", "tiny", "--quiet", "--align", "none", str(png),
                     str(tmp_path / "mr.png")]) == 0
    assert Image.open(tmp_path / "mr.png").size == (50, 40)


def _us_set(tmp_path, n=2):
    path = tmp_path / "us.npy"
    rng = np.random.default_rng(0)
    np.save(path, rng.uniform(-1, 1, (n, IMAGE_SIZE, IMAGE_SIZE, 1)).astype(np.float32))
    return path


@pytest.mark.parametrize("quiet", [False, True])
def test_evaluate_with_preset_scores_and_shows_progress(presets, tmp_path, capsys, quiet):
    us = _us_set(tmp_path)
    report = tmp_path / "report.json"
    args = ["evaluate", "--preset", "tiny", "--us", str(us), "--mr", str(us),
            "--registration-size", "32", "--json", str(report)] + (["--quiet"] if quiet else [])
    assert cli.main(args) == 0
    captured = capsys.readouterr()
    assert "deformation" in captured.out and "not for diagnosis" in captured.out
    data = json.loads(report.read_text())
    assert data["preset"] == "tiny" and data["model"].startswith(str(presets / "tiny"))
    bars = ("synthesize: 100%", "deformation score: 100%")
    if quiet:
        assert not any(bar in captured.err for bar in bars), captured.err
    else:
        assert all(bar in captured.err for bar in bars), captured.err


def test_evaluate_needs_exactly_one_of_model_and_preset(presets, tmp_path, capsys):
    us = str(_us_set(tmp_path))
    code = cli.main(["evaluate", "--preset", "nope", "--us", us, "--mr", us])
    assert code == 2 and "unknown preset 'nope'" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exc:
        cli.main(["evaluate", "--preset", "tiny", "--model", str(presets / "tiny"), "--us", us,
                  "--mr", us])
    assert exc.value.code == 2 and "not allowed with" in capsys.readouterr().err


def test_convert_with_preset_shows_steps(presets, tmp_path, capsys):
    out = tmp_path / "tiny.tflite"
    assert cli.main(["convert", "--to", "tflite", "--preset", "tiny", str(out)]) == 0
    captured = capsys.readouterr()
    assert out.is_file() and "max |tflite - SavedModel|" in captured.out
    assert "convert to tflite: 100%" in captured.err and "3/3" in captured.err


@pytest.mark.parametrize("args, problem", [
    (["--preset", "tiny", "MODEL", "out.tflite"], "with --preset, give only the output"),
    (["out.tflite"], "give the model and the output"),
    (["--preset", "nope", "out.tflite"], "unknown preset 'nope'"),
])
def test_convert_argument_errors_exit_2(presets, tmp_path, capsys, args, problem):
    args = [str(tmp_path / a) if a.endswith(".tflite") else a for a in args]
    assert cli.main(["convert", "--to", "tflite", "--quiet", *args]) == 2
    err = capsys.readouterr().err
    assert err.startswith("usmr convert: error:") and problem in err
    assert not list(tmp_path.glob("*.tflite"))
