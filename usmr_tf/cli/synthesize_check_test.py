"""`_check_writable`: the probe before the model is loaded makes no folders (two runs into one
new output folder raced on the probe's clean-up: tests/reliability/test_two_writers.py)."""

import os

import pytest

from usmr_tf.cli.synthesize import _check_writable


def test_probe_of_a_new_folder_makes_and_leaves_nothing(tmp_path):
    _check_writable(tmp_path / "new" / "deeper" / "mr")
    assert os.listdir(tmp_path) == []
    _check_writable(tmp_path / "out.png")  # an existing folder: probed beside the output
    assert os.listdir(tmp_path) == []


def test_a_file_where_a_folder_should_be_is_refused_naming_the_output(tmp_path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(OSError, match="cannot write \\(Not a directory") as info:
        _check_writable(tmp_path / "file" / "sub" / "mr")
    assert info.value.filename == str(tmp_path / "file" / "sub" / "mr")


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_a_read_only_ancestor_is_refused(tmp_path):
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o555)
    with pytest.raises(OSError, match="cannot write"):
        _check_writable(locked / "new" / "mr")
