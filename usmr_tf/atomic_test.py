import os
import stat

import pytest

from usmr_tf.atomic import atomic_path, write_text_atomic


def test_success_renames_with_readable_mode_and_keeps_suffixes(tmp_path):
    target = tmp_path / "sub" / "final.weights.h5"
    with atomic_path(target) as tmp:
        assert tmp.name.endswith(".weights.h5") and tmp.parent == target.parent
        tmp.write_bytes(b"abc")
    assert target.read_bytes() == b"abc"
    assert stat.S_IMODE(os.stat(target).st_mode) == 0o644
    assert [p.name for p in target.parent.iterdir()] == ["final.weights.h5"]


def test_failure_leaves_old_file_and_no_temp(tmp_path):
    target = write_text_atomic(tmp_path / "a.json", "old")
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            tmp.write_text("half")
            raise RuntimeError("boom")
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["a.json"]


def test_replace_dir_swaps_a_folder_whole_or_not_at_all(tmp_path):
    from usmr_tf.atomic import replace_dir

    target = tmp_path / "model"

    def write(content):
        def _write(path):
            path.mkdir()
            (path / "a.txt").write_text(content)
        return _write

    replace_dir(target, write("one"))
    (target / "stale.txt").write_text("old")
    replace_dir(target, write("two"))
    assert sorted(p.name for p in target.iterdir()) == ["a.txt"]  # the old folder is gone
    assert (target / "a.txt").read_text() == "two"

    def broken(path):
        path.mkdir()
        (path / "half.txt").write_text("x")
        raise RuntimeError("converter failed")

    with pytest.raises(RuntimeError, match="converter failed"):
        replace_dir(target, broken)
    assert (target / "a.txt").read_text() == "two"  # untouched
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"]  # no staging left
