"""`from_preset` / `usmr presets` / `usmr synthesize --preset` on a presets folder made here."""

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
    assert cli.main(["synthesize", "--preset", "tiny", "--quiet", str(png),
                     str(tmp_path / "mr.png")]) == 0
    assert Image.open(tmp_path / "mr.png").size == (50, 40)
