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


def test_replace_dir_with_two_writers_racing_for_one_folder(tmp_path):
    import threading

    from usmr_tf.atomic import replace_dir

    target, errors = tmp_path / "model", []

    def writer(tag):
        def write(path):
            path.mkdir()
            for i in range(20):
                (path / f"f{i}.txt").write_text(tag)
        for _ in range(40):
            try:
                replace_dir(target, write)
            except Exception as exc:  # noqa: BLE001 - any failure is the finding
                errors.append(repr(exc))

    threads = [threading.Thread(target=writer, args=(tag,)) for tag in "ab"]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors, errors[:3]  # before: FileNotFoundError / Directory not empty
    files = list(target.iterdir())
    assert len(files) == 20 and len({p.read_text() for p in files}) == 1  # one writer's, whole
    assert [p.name for p in tmp_path.iterdir()] == ["model"]


def test_swap_in_dir_puts_the_old_folder_back_when_it_fails(tmp_path):
    from usmr_tf.atomic import swap_in_dir

    target, aside = tmp_path / "model", tmp_path / "aside"
    target.mkdir()
    (target / "a.txt").write_text("old")
    aside.mkdir()
    with pytest.raises(FileNotFoundError):
        swap_in_dir(tmp_path / "missing", target, aside)  # the rename of the new folder fails
    assert (target / "a.txt").read_text() == "old" and not any(aside.iterdir())
    new = tmp_path / "new"
    new.mkdir()
    (new / "b.txt").write_text("new")
    moved = swap_in_dir(new, target, aside)
    assert [p.name for p in target.iterdir()] == ["b.txt"]
    assert [(m / "a.txt").read_text() for m in moved] == ["old"]


def test_exclusive_makes_the_folder_again_when_another_run_removed_it(tmp_path, monkeypatch):
    import os

    from usmr_tf import atomic

    out = tmp_path / "new" / "deeper" / "out.nii.gz"
    real_open, calls = os.open, []

    def open_after_a_rival_rmdir(path, *args, **kwargs):
        calls.append(path)
        if len(calls) == 1:  # another run removes the empty folders it made, right now
            os.rmdir(out.parent)
            os.rmdir(out.parent.parent)
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr(atomic.os, "open", open_after_a_rival_rmdir)
    with atomic.exclusive(out):  # before: "cannot write ...: No such file or directory"
        assert (out.parent / ".out.nii.gz.lock").exists()
        out.write_text("written")
    assert len(calls) == 2 and out.read_text() == "written"
    assert not (out.parent / ".out.nii.gz.lock").exists()  # released: the lock file is gone
