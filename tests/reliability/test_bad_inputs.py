"""Bad models and bad files on every load path (issue 12): each case is one `usmr` command that
must end with exactly one `usmr CMD: error:` line naming the file and the problem, exit status
2, no traceback, and no output (not even a half-written one).

Tests run as root in CI containers, where `chmod 000` does not stop a read: those cases skip
there, and the read-only cases write under /proc, which is read-only for root too.
"""

import os
import pathlib
import shutil

import pytest

from usmr_tf.cli import main as cli
from usmr_tf.training import testing

ROOT = hasattr(os, "geteuid") and os.geteuid() == 0


def _readonly_dir():
    """A folder nobody can create files in (root included), or skip."""
    folder = pathlib.Path("/proc")
    try:
        fd = os.open(folder / "usmr_probe", os.O_CREAT | os.O_WRONLY)
    except OSError:
        return folder
    os.close(fd)
    pytest.skip("/proc is writable here")


def _garbage(path, data=b"\x00\x01 not what it should be \xff" * 10):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def _truncate(path, fraction=0.5):
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * fraction)])
    return path


def _unreadable(path):
    if ROOT:
        pytest.skip("running as root: chmod 000 does not stop root reading the file")
    path.chmod(0)
    return path


def _synth(model, src, out, *extra):
    return ["synthesize", "--model", str(model), str(src), str(out), "--quiet", "--align", "none",
            *extra]


# Each case: (fixtures, tmp) -> (argv, words the error must contain, paths that must not exist).
def case_pb_not_a_savedmodel(f, tmp):
    m = f.copy_model()
    _garbage(m / "1" / "saved_model.pb")
    return _synth(m, f.us_png, tmp / "mr.png"), [str(m / "1"), "not a loadable SavedModel"]


def case_pb_truncated(f, tmp):
    m = f.copy_model()
    _truncate(m / "1" / "saved_model.pb")
    return _synth(m, f.us_png, tmp / "mr.png"), [str(m / "1"), "not a loadable SavedModel"]


def case_pb_empty(f, tmp):
    m = f.copy_model()
    (m / "1" / "saved_model.pb").write_bytes(b"")
    return _synth(m, f.us_png, tmp / "mr.png"), [str(m / "1"), "SavedModel"]


def case_pb_is_a_folder(f, tmp):
    m = f.copy_model()
    (m / "1" / "saved_model.pb").unlink()
    (m / "1" / "saved_model.pb").mkdir()
    return _synth(m, f.us_png, tmp / "mr.png"), [str(m / "1"), "saved_model.pb is not a file"]


def case_variables_missing(f, tmp):
    m = f.copy_model()
    shutil.rmtree(m / "1" / "variables")
    return _synth(m, f.us_png, tmp / "mr.png"), [str(m / "1"), "not a loadable SavedModel"]


def case_variables_truncated(f, tmp):
    m = f.copy_model()
    for data in (m / "1" / "variables").glob("variables.data*"):
        _truncate(data, 0.3)
    return _synth(m, f.us_png, tmp / "mr.png"), [str(m / "1"), "not a loadable SavedModel"]


def case_variables_index_garbage(f, tmp):
    m = f.copy_model()
    _garbage(m / "1" / "variables" / "variables.index")
    return _synth(m, f.us_png, tmp / "mr.png"), [str(m / "1"), "not a loadable SavedModel"]


def case_no_serving_signature(f, tmp):
    import tensorflow as tf

    m = tmp / "models" / "nosig"
    module = tf.Module()
    module.v = tf.Variable(1.0)
    tf.saved_model.save(module, str(m / "1"))
    return _synth(m, f.us_png, tmp / "mr.png"), [str(m / "1"), "no `serving_default`"]


def case_wrong_input_signature(f, tmp):
    import tensorflow as tf

    m = tmp / "models" / "wrongsig"
    module = tf.Module()
    module.f = tf.function(lambda x: {"y": x * 2},
                           input_signature=[tf.TensorSpec([None, 3], tf.int32, name="x")])
    tf.saved_model.save(module, str(m / "1"), signatures={"serving_default": module.f})
    return _synth(m, f.us_png, tmp / "mr.png"), [str(m / "1"), "expected `us_image` float32"]


def case_model_folder_missing(f, tmp):
    return _synth(tmp / "nope", f.us_png, tmp / "mr.png"), [str(tmp / "nope"), "no exported"]


def case_model_is_a_file(f, tmp):
    m = _garbage(tmp / "model.bin")
    return _synth(m, f.us_png, tmp / "mr.png"), [str(m), "no exported model"]


def case_metadata_garbage(f, tmp):
    m = f.copy_model()
    (m / "usmr.json").write_text("{ not json")
    return _synth(m, f.us_png, tmp / "mr.png"), [str(m / "usmr.json"), "unreadable"]


def case_metadata_binary(f, tmp):
    m = f.copy_model()
    _garbage(m / "usmr.json")
    return _synth(m, f.us_png, tmp / "mr.png"), [str(m / "usmr.json"), "unreadable"]


def case_metadata_not_an_object(f, tmp):
    m = f.copy_model()
    (m / "usmr.json").write_text("[1, 2]")
    return _synth(m, f.us_png, tmp / "mr.png"), [str(m / "usmr.json"), "JSON object"]


def case_metadata_bad_slice_axis(f, tmp):
    m = f.copy_model()
    (m / "usmr.json").write_text('{"slice_axis": "sideways"}')
    return _synth(m, f.us_png, tmp / "mr.png"), [str(m / "usmr.json"), "slice_axis"]


def case_metadata_unreadable(f, tmp):
    m = f.copy_model()
    _unreadable(m / "usmr.json")
    return _synth(m, f.us_png, tmp / "mr.png"), [str(m / "usmr.json"), "unreadable"]


def case_pb_unreadable(f, tmp):
    m = f.copy_model()
    _unreadable(m / "1" / "saved_model.pb")
    return _synth(m, f.us_png, tmp / "mr.png"), [str(m / "1"), "SavedModel"]


def case_preset_unknown(f, tmp):
    return (["synthesize", "--preset", "no_such_preset", str(f.us_png), str(tmp / "mr.png")],
            ["no_such_preset", "unknown preset"])


def case_preset_broken(f, tmp):
    m = f.copy_model("broken_preset")
    _garbage(m / "1" / "saved_model.pb")
    f.monkeypatch.setenv("USMR_PRESETS_DIR", str(m.parent))
    return (["synthesize", "--preset", "broken_preset", str(f.us_png), str(tmp / "mr.png")],
            [str(m / "1"), "not a loadable SavedModel"])


def case_input_unreadable(f, tmp):
    _unreadable(f.us_png)
    return _synth(f.model, f.us_png, tmp / "mr.png"), [str(f.us_png)]


def case_input_dangling_link(f, tmp):
    link = tmp / "gone.png"
    link.symlink_to(tmp / "deleted.png")
    return _synth(f.model, link, tmp / "mr.png"), [str(link), "no such file"]


def case_output_parent_is_a_file(f, tmp):
    blocker = _garbage(tmp / "blocker")
    out = blocker / "mr.png"
    return _synth(f.model, f.us_png, out), [str(out)], [out]


def case_output_folder_is_a_file(f, tmp):
    blocker = _garbage(tmp / "out_folder")
    return (_synth(f.model, f.us_png.parent, blocker, "--overwrite"),
            [str(blocker), "must be a folder"])


def case_output_read_only(f, tmp):
    out = _readonly_dir() / "usmr_mr.png"
    return _synth(f.model, f.us_png, out), [str(out)], [out]


def case_folder_output_read_only(f, tmp):
    out = _readonly_dir() / "usmr_mr_folder"
    return _synth(f.model, f.us_png.parent, out), [str(out)], [out]


def case_preview_read_only(f, tmp):
    preview = _readonly_dir() / "usmr_preview.png"
    out = tmp / "mr.png"
    return (_synth(f.model, f.us_png, out, "--preview", str(preview)), [str(preview)],
            [preview, out])


def case_export_checkpoint_garbage(f, tmp):
    ckpt = _garbage(tmp / "run" / "model.keras")
    return (["export", "--checkpoint", str(ckpt), "--name", "x", "--out", str(tmp / "sm")],
            [str(ckpt), "cannot load the model"], [tmp / "sm" / "x" / "1"])


def case_export_checkpoint_truncated(f, tmp):
    ckpt = tmp / "run" / "model.keras"
    ckpt.parent.mkdir()
    shutil.copy(f.checkpoint, ckpt)
    _truncate(ckpt, 0.6)  # an interrupted copy / write
    return (["export", "--checkpoint", str(ckpt), "--name", "x", "--out", str(tmp / "sm")],
            [str(ckpt), "cannot load the model"], [tmp / "sm" / "x" / "1"])


def case_export_checkpoint_missing(f, tmp):
    ckpt = tmp / "nope.keras"
    return (["export", "--checkpoint", str(ckpt), "--name", "x", "--out", str(tmp / "sm")],
            [str(ckpt), "no such file"], [tmp / "sm"])


def case_export_checkpoint_is_a_folder(f, tmp):
    ckpt = tmp / "dir.keras"
    ckpt.mkdir()
    return (["export", "--checkpoint", str(ckpt), "--name", "x", "--out", str(tmp / "sm")],
            [str(ckpt), "cannot load the model"], [tmp / "sm" / "x" / "1"])


def case_export_out_is_a_file(f, tmp):
    blocker = _garbage(tmp / "sm")
    return (["export", "--checkpoint", str(f.checkpoint), "--name", "x", "--out", str(blocker)],
            [str(blocker)])


def case_export_out_read_only(f, tmp):
    out = _readonly_dir() / "usmr_saved_models"
    return (["export", "--checkpoint", str(f.checkpoint), "--name", "x", "--out", str(out)],
            [str(out)], [out])


def case_convert_pb_garbage(f, tmp):
    m = f.copy_model()
    _garbage(m / "1" / "saved_model.pb")
    out = tmp / "m.tflite"
    return (["convert", "--to", "tflite", str(m), str(out), "--quiet"],
            [str(m / "1"), "saved_model.pb"], [out])


def case_convert_out_parent_is_a_file(f, tmp):
    out = _garbage(tmp / "blocker") / "m.onnx"
    return (["convert", "--to", "onnx", str(f.model), str(out), "--quiet"], [str(out)], [out])


def case_evaluate_broken_model(f, tmp):
    m = f.copy_model()
    _truncate(m / "1" / "saved_model.pb")
    return (["evaluate", "--model", str(m), "--us", str(f.us_png.parent), "--mr",
             str(f.us_png.parent), "--quiet", "--no-deformation"],
            [str(m / "1"), "not a loadable SavedModel"])


def case_train_out_is_a_file(f, tmp):
    blocker = _garbage(tmp / "run")
    return (["train", "--recipe", str(testing.QUICK), "--out", str(blocker)], [str(blocker)])


def case_train_recipe_is_a_folder(f, tmp):
    return (["train", "--recipe", str(tmp), "--out", str(tmp / "run")],
            [str(tmp), "recipe file not found"], [tmp / "run" / "model.keras"])


def case_train_recipe_binary(f, tmp):
    recipe = _garbage(tmp / "recipe.yaml")
    return (["train", "--recipe", str(recipe), "--out", str(tmp / "run")], [str(recipe)],
            [tmp / "run"])


def case_train_backup_state_garbage(f, tmp):
    run = tmp / "run"
    _garbage(run / "backup" / "state.json")
    argv = ["train", "--recipe", str(testing.QUICK), "--out", str(run)]
    for text in testing.TINY + ("training.epochs=1", "logging.verbose=0"):
        argv += ["--set", text]
    return argv, [str(run / "backup" / "state.json"), "cannot read the training backup"], [
        run / "model.keras", run / "final.weights.h5"]


def case_prepare_config_is_a_folder(f, tmp):
    return (["prepare", str(tmp), "--out", str(tmp / "cache"), "--quiet"], [str(tmp)],
            [tmp / "cache"])


def case_prepare_config_binary(f, tmp):
    config = _garbage(tmp / "data.yaml")
    return (["prepare", str(config), "--out", str(tmp / "cache"), "--quiet"], [str(config)],
            [tmp / "cache"])


CASES = {name[len("case_"):]: fn for name, fn in sorted(globals().items())
         if name.startswith("case_")}


class _Fixtures:
    pass


@pytest.mark.parametrize("name", sorted(CASES))
def test_bad_input_gives_one_error_line_and_no_output(name, tmp_path, capsys, monkeypatch,
                                                      good_model, good_checkpoint, copy_model,
                                                      us_png):
    f = _Fixtures()
    f.model, f.checkpoint, f.copy_model, f.us_png = good_model, good_checkpoint, copy_model, us_png
    f.monkeypatch = monkeypatch
    work = tmp_path / "work"
    work.mkdir()
    built = CASES[name](f, work)
    argv, words = built[0], built[1]
    absent = built[2] if len(built) > 2 else [work / "mr.png"]
    code = cli.main(argv)
    captured = capsys.readouterr()
    err = captured.err
    errors = [line for line in err.splitlines() if "error:" in line]
    assert code == 2, f"exit {code}\n{err[-3000:]}"
    assert "Traceback" not in err, err[-3000:]
    assert len(errors) == 1 and errors[0].startswith(f"usmr {argv[0]}: error: "), err[-3000:]
    for word in words:
        assert word in errors[0], f"{word!r} not in {errors[0]!r}"
    for path in absent:
        assert not pathlib.Path(path).exists(), f"{path} was written"
    for folder in {pathlib.Path(p).parent for p in absent}:
        if folder.is_dir() and folder != pathlib.Path("/proc"):
            temps = [p.name for p in folder.iterdir() if p.name.startswith(".")]
            assert not temps, f"temp files left in {folder}: {temps}"


def test_the_matrix_has_at_least_30_cases():
    assert len(CASES) >= 30


def test_from_preset_of_a_broken_preset_raises_a_data_error(copy_model, monkeypatch):
    import usmr_tf
    from usmr_tf.errors import DataError

    m = copy_model("api_broken")
    _truncate(m / "1" / "saved_model.pb", 0.2)
    monkeypatch.setenv("USMR_PRESETS_DIR", str(m.parent))
    with pytest.raises(DataError, match="not a loadable SavedModel") as info:
        usmr_tf.from_preset("api_broken")
    assert str(m / "1") in str(info.value)
