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
