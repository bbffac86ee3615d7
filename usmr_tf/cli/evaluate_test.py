import json

import keras
import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from usmr_tf.cli import main as cli
from usmr_tf.metrics import synthetic
from usmr_tf.metrics.image_sets import unit_to_grey

SIZE = 32


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    """A tiny SavedModel with the export contract: serving_default(us_image) -> mri_image."""
    keras.utils.set_random_seed(0)
    inputs = keras.Input((SIZE, SIZE, 1))
    x = keras.layers.Conv2D(2, 3, padding="same", activation="relu")(inputs)
    outputs = keras.layers.Conv2D(1, 3, padding="same", activation="tanh")(x)
    model = keras.Model(inputs, outputs)
    archive = keras.export.ExportArchive()
    archive.track(model)
    archive.add_endpoint(
        name="serving_default",
        fn=lambda us_image: {"mri_image": model(us_image)},
        input_signature=[tf.TensorSpec([None, SIZE, SIZE, 1], tf.float32, name="us_image")],
    )
    root = tmp_path_factory.mktemp("saved_models") / "tiny"
    archive.write_out(str(root / "1"), verbose=False)
    (root / "usmr.json").write_text(json.dumps({"image_size": SIZE}))
    return root


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    folder = tmp_path_factory.mktemp("eval_data")
    us = np.stack([synthetic.head_phantom(SIZE, seed=s) for s in range(3)])[..., None]
    np.save(folder / "us.npy", us)
    np.save(folder / "paired.npy", us)
    mr_dir = folder / "mr"
    mr_dir.mkdir()
    for s in range(4):  # real MR as 8-bit PNGs at another size (fitted to the model size)
        Image.fromarray(unit_to_grey(synthetic.head_phantom(48, seed=10 + s))).save(
            mr_dir / f"mr_{s}.png")
    return folder


def test_evaluate_prints_table_and_writes_json(model_dir, data, tmp_path, capsys):
    out = tmp_path / "result.json"
    code = cli.main(["evaluate", "--model", str(model_dir), "--us", str(data / "us.npy"),
                     "--mr", str(data / "mr"), "--paired-mr", str(data / "paired.npy"),
                     "--json", str(out), "--top-k", "1"])
    assert code == 0
    printed = capsys.readouterr().out
    for name in ("deformation", "swd", "structure", "psnr", "ssim", "mae"):
        assert name in printed
    report = json.loads(out.read_text())
    assert report["image_size"] == SIZE and report["version"] == 1
    assert report["counts"] == {"us": 3, "real_mr": 4}
    metrics = report["metrics"]
    assert 0.0 <= metrics["deformation"] <= 1.0
    assert len(report["per_image"]["deformation"]) == 3
    assert all(0 <= i < 4 for i in report["per_image"]["matched_mr_index"])
    # cross-check against the model itself
    loaded = tf.saved_model.load(str(model_dir / "1")).signatures["serving_default"]
    us = np.load(data / "us.npy")
    synth = loaded(us_image=tf.constant(us))["mri_image"].numpy()
    expected_mae = float(np.abs(np.clip(synth, -1, 1) - us).mean())
    assert metrics["mae"] == pytest.approx(expected_mae, rel=1e-5)
    assert -1.0 <= metrics["structure"] <= 1.0 and metrics["swd"] > 0


@pytest.mark.parametrize("problem", ["nan", "empty_dir", "missing", "wrong_rank"])
def test_bad_input_exits_2_without_output(problem, model_dir, data, tmp_path, capsys):
    us, mr = str(data / "us.npy"), str(data / "mr")
    if problem == "nan":
        bad = np.load(data / "us.npy")
        bad[0, 0, 0, 0] = np.nan
        us = str(tmp_path / "nan.npy")
        np.save(us, bad)
    elif problem == "empty_dir":
        (tmp_path / "empty").mkdir()
        mr = str(tmp_path / "empty")
    elif problem == "missing":
        us = str(tmp_path / "nope.npy")
    else:
        us = str(tmp_path / "rank5.npy")
        np.save(us, np.zeros((1, 2, SIZE, SIZE, 1), np.float32))
    out = tmp_path / "result.json"
    code = cli.main(["evaluate", "--model", str(model_dir), "--us", us, "--mr", mr,
                     "--json", str(out), "--no-deformation"])
    err = capsys.readouterr().err
    assert code == 2, err
    assert "error:" in err
    assert {"nan": "NaN", "empty_dir": "no .png", "missing": "no such file",
            "wrong_rank": "expected shape"}[problem] in err
    assert not out.exists()


def test_paired_count_mismatch_and_bad_model(model_dir, data, tmp_path, capsys):
    np.save(tmp_path / "two.npy", np.load(data / "us.npy")[:2])
    code = cli.main(["evaluate", "--model", str(model_dir), "--us", str(data / "us.npy"),
                     "--mr", str(data / "mr"), "--paired-mr", str(tmp_path / "two.npy"),
                     "--no-deformation"])
    assert code == 2 and "paired MR" in capsys.readouterr().err
    # --max-images cuts US and paired MR alike, so 2 pairs match again
    code = cli.main(["evaluate", "--model", str(model_dir), "--us", str(data / "us.npy"),
                     "--mr", str(data / "mr"), "--paired-mr", str(data / "paired.npy"),
                     "--max-images", "2", "--no-deformation"])
    assert code == 0 and "psnr" in capsys.readouterr().out
    code = cli.main(["evaluate", "--model", str(tmp_path), "--us", str(data / "us.npy"),
                     "--mr", str(data / "mr")])
    assert code == 2 and "no exported model" in capsys.readouterr().err


def test_reference_rows_identity_and_real_mr(model_dir, data, tmp_path, capsys):
    out = tmp_path / "scores.json"
    us_path, mr_path = data / "us.npy", data / "mr"
    assert cli.main(["evaluate", "--model", str(model_dir), "--us", str(us_path), "--mr", str(mr_path),
                 "--mr-reference", str(mr_path), "--no-deformation", "--json", str(out),
                 "--quiet"]) == 0
    text = capsys.readouterr().out
    lines = {line.split()[0]: line for line in text.splitlines() if line.strip()}
    assert "identity" in lines and "real" in lines and "diversity" in text
    report = json.loads(out.read_text())
    refs = report["references"]
    assert refs["identity"]["diversity"] == 1.0 and refs["identity"]["structure"] > 0.99
    assert "structure" not in refs["real MR"] and refs["real MR"]["swd"] >= 0
    assert "outline" not in refs["real MR"] and 0 < refs["identity"]["outline"] <= 1
    assert 0 <= report["metrics"]["diversity"]
    assert 0 <= report["metrics"]["outline"] <= 1 and len(report["per_image"]["outline"]) == 3


def test_deformation_equalise_scores_rank_equalised_images(model_dir, data, tmp_path):
    from usmr_tf.metrics import deformation
    from usmr_tf.metrics.image_sets import load_image_set

    out = tmp_path / "equalised.json"
    code = cli.main(["evaluate", "--model", str(model_dir), "--us", str(data / "us.npy"),
                     "--mr", str(data / "mr"), "--json", str(out), "--top-k", "1",
                     "--no-realism", "--no-references", "--deformation-equalise", "--quiet"])
    assert code == 0
    report = json.loads(out.read_text())
    assert report["registration"] == {"size": 64, "equalise": True}
    loaded = tf.saved_model.load(str(model_dir / "1")).signatures["serving_default"]
    synth = np.clip(loaded(us_image=tf.constant(np.load(data / "us.npy")))["mri_image"].numpy(),
                    -1, 1)
    real = load_image_set(str(data / "mr"), SIZE, modality="mr")
    want = deformation.deformation_scores(
        synth, real, top_k=1, config=deformation.RegistrationConfig(equalise=True))
    np.testing.assert_allclose(report["per_image"]["deformation"], want["scores"], atol=1e-6)
    plain = deformation.deformation_scores(synth, real, top_k=1)
    assert np.abs(plain["scores"] - want["scores"]).max() > 1e-3  # the flag changed the score


def test_outline_scale_zero_leaves_the_check_out_and_a_bad_one_is_refused(model_dir, data,
                                                                           tmp_path, capsys):
    out = tmp_path / "scores.json"
    base = ["evaluate", "--model", str(model_dir), "--us", str(data / "us.npy"), "--mr",
            str(data / "mr"), "--no-deformation", "--no-realism", "--quiet"]
    assert cli.main([*base, "--outline-scale", "0", "--json", str(out)]) == 0
    report = json.loads(out.read_text())
    assert "outline" not in report["metrics"] and report["outline_scale"] is None
    assert "outline" not in report["references"]["identity"]
    capsys.readouterr()
    bad = tmp_path / "bad.json"
    assert cli.main([*base, "--outline-scale", "-1", "--json", str(bad)]) == 2
    assert "--outline-scale" in capsys.readouterr().err and not bad.exists()


def test_realism_repeats_are_reported_and_a_bad_count_is_refused(model_dir, tmp_path, capsys):
    us = np.stack([synthetic.head_phantom(SIZE, seed=s) for s in range(6)])[..., None]
    np.save(tmp_path / "us6.npy", us.astype(np.float32))
    mr = np.stack([synthetic.head_phantom(SIZE, seed=20 + s) for s in range(6)])[..., None]
    np.save(tmp_path / "mr6.npy", mr.astype(np.float32))
    base = ["evaluate", "--model", str(model_dir), "--us", str(tmp_path / "us6.npy"), "--mr",
            str(tmp_path / "mr6.npy"), "--no-deformation", "--no-references", "--quiet"]
    out = tmp_path / "scores.json"
    assert cli.main([*base, "--realism-repeats", "2", "--json", str(out)]) == 0
    metrics = json.loads(out.read_text())["metrics"]
    assert len(metrics["realism_per_repeat"]) == 2 and metrics["realism_n"] == 6
    assert metrics["realism"] == pytest.approx(np.mean(metrics["realism_per_repeat"]))
    assert "realism_sd" in metrics and "±" in capsys.readouterr().out
    bad = tmp_path / "bad.json"
    assert cli.main([*base, "--realism-repeats", "0", "--json", str(bad)]) == 2
    assert "--realism-repeats" in capsys.readouterr().err and not bad.exists()
    # not quiet: a bar over the tests (2 repeats x the model row; with references x 3 rows)
    loud = [a for a in base if a not in ("--quiet", "--no-references")]
    assert cli.main([*loud, "--realism-repeats", "2", "--mr-reference",
                     str(tmp_path / "mr6.npy")]) == 0
    assert "realism test: 100%" in capsys.readouterr().err


def test_realism_progress_counts_every_test_that_runs():
    from usmr_tf.metrics.evaluation import realism_test_count
    from usmr_tf.metrics.realism import RealismConfig

    five = RealismConfig(repeats=5)
    assert realism_test_count(84, 78, None, 78) == 0
    assert realism_test_count(84, 78, five, 78) == 15
    assert realism_test_count(84, 78, five) == 10                          # no real-MR row
    assert realism_test_count(84, 78, five, 78, with_references=False) == 5  # --no-references
    assert realism_test_count(84, 78, five, 3) == 10                       # 3 slices: skipped
    assert realism_test_count(4, 78, five) == 0                            # too few US
