import json

import numpy as np
import pytest

from usmr_tf.data import cache
from usmr_tf.errors import DataError


def _parts(n_train=5, n_test=2, size=16):
    rng = np.random.default_rng(0)
    make = lambda n: (rng.uniform(-1, 1, (n, size, size, 1)).astype(np.float32),  # noqa: E731
                      [{"subject": f"s{i}", "position": i} for i in range(n)])
    return {"us": {"train": make(n_train), "test": make(n_test)},
            "mr": {"train": make(3), "test": make(1)}}


def test_write_and_load_round_trip(tmp_path):
    parts = _parts()
    out = cache.write_prepared(tmp_path / "ds", parts, {"key": "k1"})
    manifest = cache.read_manifest(out)
    assert manifest["key"] == "k1" and manifest["counts"]["us"] == {"train": 5, "test": 2}
    images, meta = cache.load_prepared(out / "us", "train")
    np.testing.assert_array_equal(images, parts["us"]["train"][0])
    assert meta == parts["us"]["train"][1]
    images, _ = cache.load_prepared(out, "test", modality="mr")
    assert images.shape == (1, 16, 16, 1) and images.dtype == np.float32
    with pytest.raises(DataError, match="pass modality"):
        cache.load_prepared(out, "train")  # two modalities: ambiguous


def test_failed_write_leaves_nothing_and_keeps_previous(tmp_path):
    out = cache.write_prepared(tmp_path / "ds", _parts(), {"key": "old"})
    broken = _parts()
    broken["mr"]["test"] = (broken["mr"]["test"][0], [])  # length mismatch -> error mid-write
    with pytest.raises(ValueError):
        cache.write_prepared(out, broken, {"key": "new"})
    assert cache.read_manifest(out)["key"] == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ds"]
    with pytest.raises(ValueError):
        cache.write_prepared(tmp_path / "fresh", broken, {"key": "new"})
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ds"]


def test_failed_aside_folder_leaves_no_temporary_folder(tmp_path, monkeypatch):
    made = []

    def mkdtemp(**kwargs):  # the write folder is made, the aside folder fails (disk full)
        if made:
            raise OSError(28, "No space left on device")
        made.append(real(**kwargs))
        return made[-1]

    real = cache.tempfile.mkdtemp
    monkeypatch.setattr(cache.tempfile, "mkdtemp", mkdtemp)
    with pytest.raises(OSError, match="No space"):
        cache.write_prepared(tmp_path / "ds", _parts(), {"key": "new"})
    assert len(made) == 1 and list(tmp_path.iterdir()) == []


def test_replaces_a_previous_dataset_but_not_other_folders(tmp_path):
    out = cache.write_prepared(tmp_path / "ds", _parts(), {"key": "a"})
    cache.write_prepared(out, _parts(n_train=7), {"key": "b"})
    assert cache.read_manifest(out)["counts"]["us"]["train"] == 7
    other = tmp_path / "mine"
    other.mkdir()
    (other / "notes.txt").write_text("keep me")
    with pytest.raises(DataError, match="refusing"):
        cache.write_prepared(other, _parts(), {"key": "a"})
    assert (other / "notes.txt").read_text() == "keep me"


def test_load_prepared_errors(tmp_path):
    with pytest.raises(DataError, match="not found"):
        cache.load_prepared(tmp_path / "absent")
    out = cache.write_prepared(tmp_path / "ds", _parts(), {"key": "a"})
    with pytest.raises(DataError, match="unknown split"):
        cache.load_prepared(out / "us", "val")
    (out / "us" / "test.json").write_text(json.dumps([{}]))
    with pytest.raises(DataError, match="metadata entries"):
        cache.load_prepared(out / "us", "test")
    (out / "us" / "train.npy").write_bytes(b"garbage")
    with pytest.raises(DataError, match="train.npy"):
        cache.load_prepared(out / "us", "train")


def test_params_key_is_stable_and_sensitive():
    assert cache.params_key({"a": 1, "b": [1, 2]}) == cache.params_key({"b": [1, 2], "a": 1})
    assert cache.params_key({"a": 1}) != cache.params_key({"a": 2})


def test_two_writers_of_one_dataset_both_succeed(tmp_path):
    import threading

    out, errors = tmp_path / "ds", []

    def writer(key, n_train):
        for _ in range(15):
            try:
                cache.write_prepared(out, _parts(n_train=n_train, size=8), {"key": key})
            except Exception as exc:  # noqa: BLE001 - any failure is the finding
                errors.append(repr(exc))

    threads = [threading.Thread(target=writer, args=a) for a in (("a", 3), ("b", 4))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors, errors[:3]
    manifest = cache.read_manifest(out)  # one writer's whole dataset, not a mix
    want = {"a": 3, "b": 4}[manifest["key"]]
    assert cache.load_prepared(out / "us", "train")[0].shape[0] == want
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ds"]  # nothing hidden left behind


def _mr_parts(subjects, sources, size=16, offset=0.0):
    parts = _parts(size=size)
    n = len(subjects)
    images = np.linspace(-1, 1, n * size * size, dtype=np.float32).reshape(n, size, size, 1)
    parts["mr"]["train"] = (images + offset, [{"subject": s, "source": f} for s, f in
                                              zip(subjects, sources)])
    return parts


def test_remix_drops_and_adds_training_slices_only(tmp_path):
    # every source path holds "2021" in a folder name, as in ../shared/data
    root = "/data/mr/atlas_2021/"
    base = cache.write_prepared(tmp_path / "base", _mr_parts(
        ["sb/21", "sb/22", "svrtk/x"],
        [root + "GA21/srr.nii.gz", root + "GA22/srr.nii.gz", root + "ref-space-brain.nii.gz"]),
        {"key": "b", "note": "n"})
    other_parts = _mr_parts(["crl/21", "crl/22", "crl/28"],
                            [root + f"STA{g}.nii.gz" for g in (21, 22, 28)], offset=0.5)
    other = cache.write_prepared(tmp_path / "other", other_parts, {"key": "o"})
    # a source's file name matches (not its folders): only the head goes
    out = cache.remix(base, tmp_path / "mix", drop="ref-space", add=[(other, r"crl/2[12]")],
                      note="diagnostic")
    images, meta = cache.load_prepared(out, "train", modality="mr")
    base_images, _ = cache.load_prepared(base, "train", modality="mr")
    assert [m["subject"] for m in meta] == ["sb/21", "sb/22", "crl/21", "crl/22"]
    np.testing.assert_array_equal(images[:2], base_images[:2])
    np.testing.assert_array_equal(images[2:], other_parts["mr"]["train"][0][:2])
    for mod, split in [("us", "train"), ("us", "test"), ("mr", "test")]:  # the rest unchanged
        np.testing.assert_array_equal(cache.load_prepared(out, split, modality=mod)[0],
                                      cache.load_prepared(base, split, modality=mod)[0])
    manifest = cache.read_manifest(out)
    assert manifest["counts"]["mr"]["train"] == 4 and manifest["key"] not in ("b", "o")
    assert manifest["remix"]["dropped"] == 1 and manifest["remix"]["add"][0]["slices"] == 2
    assert manifest["remix"]["add"][0]["key"] == "o" and manifest["note"] == "n; diagnostic"
    # "21" is a subject's or a file's, never the folders' "2021": sb/21 and STA21 only
    assert [m["subject"] for m in cache.load_prepared(
        cache.remix(base, tmp_path / "ga21", drop="21", add=[(other, "21")]), "train",
        modality="mr")[1]] == ["sb/22", "svrtk/x", "crl/21"]
    # a folder alone (str or Path, also bare) takes all its slices; the key follows the data
    whole = cache.remix(base, tmp_path / "all", add=str(other))
    assert cache.read_manifest(whole)["counts"]["mr"]["train"] == 6
    again = cache.remix(base, tmp_path / "sub" / "all", add=[other])
    assert cache.read_manifest(again)["key"] == cache.read_manifest(whole)["key"]


def test_remix_refusals(tmp_path):
    base = cache.write_prepared(tmp_path / "base", _parts(), {"key": "b"})
    small = cache.write_prepared(tmp_path / "small", _parts(size=8), {"key": "s"})
    cases = [({"add": [small]}, "8 px slices"),
             ({"drop": "."}, "no mr/train slices"),
             ({"drop": "no-such-subject"}, "matches no mr/train slice"),
             ({"add": [(base, "no-such-subject")]}, "matches no mr/train slice"),
             ({"drop": "["}, "bad regular expression"),
             ({"add": [(base, "s", "extra")]}, "add split 'extra' is not one of"),
             ({"add": [(base, "s", "test", 1)]}, "not a folder, "),
             ({"add": [(base, None, "heldout")]}, "no held-out split here"),
             ({"split": "heldout", "add": [base]}, "no mr/heldout slices to change"),
             ({"add": [tmp_path]}, "not a prepared dataset")]
    for kwargs, message in cases:
        with pytest.raises(DataError, match=message):
            cache.remix(base, tmp_path / "x", **kwargs)
    with pytest.raises(DataError, match="not a prepared dataset"):
        cache.remix(tmp_path, tmp_path / "x")
    for out in (base, small):  # never over a folder it is made from
        with pytest.raises(DataError, match="would replace"):
            cache.remix(base, out, add=[small])
    assert not (tmp_path / "x").exists() and cache.read_manifest(base)["key"] == "b"


def test_remix_takes_slices_from_another_split(tmp_path):
    # the left-out-source swap of issue 18: one subject's training slices become the held-out
    # split of a scoring folder, a held-out source's slices join another folder's training MR
    root = "/data/mr/atlas_2021/"
    parts = _mr_parts(["sb/21", "svrtk/x", "svrtk/x"],
                      [root + "srr.nii.gz", root + "templ.nii.gz", root + "ref-space-brain.nii.gz"])
    held = np.full((2, 16, 16, 1), 0.25, np.float32)
    parts["mr"]["heldout"] = (held, [{"subject": "mial/sub-01", "source": root + "sr.nii.gz"}] * 2)
    base = cache.write_prepared(tmp_path / "base", parts, {"key": "b"})
    train = cache.remix(base, tmp_path / "train", drop="ref-space", add=[(base, None, "heldout")])
    images, meta = cache.load_prepared(train, "train", modality="mr")
    assert [m["subject"] for m in meta] == ["sb/21", "svrtk/x", "mial/sub-01", "mial/sub-01"]
    np.testing.assert_array_equal(images[2:], held)
    np.testing.assert_array_equal(cache.load_prepared(train, "heldout", modality="mr")[0], held)
    assert cache.read_manifest(train)["remix"]["add"][0]["split"] == "heldout"
    score = cache.remix(base, tmp_path / "score", split="heldout", drop=".",
                        add=[(base, "ref-space", "train")])
    images, meta = cache.load_prepared(score, "heldout", modality="mr")
    np.testing.assert_array_equal(images, parts["mr"]["train"][0][2:])
    np.testing.assert_array_equal(cache.load_prepared(score, "train", modality="mr")[0],
                                  parts["mr"]["train"][0])  # the changed split only
    # the key tells a split's slices from another's; an add from the same split keeps its key
    keys = {cache.read_manifest(cache.remix(base, tmp_path / name, add=[entry]))["key"]
            for name, entry in [("a", (base, "sb")), ("b", (base, "sb", "train")),
                                ("n", (base, "sb", None)), ("c", (base, None, "test"))]}
    assert len(keys) == 2  # (folder, regex, None) = the same split


def test_remix_drops_detached_parts_of_the_changed_split(tmp_path):
    yy, xx = np.mgrid[:32, :32]
    head = np.where(np.hypot(yy - 19, xx - 16) < 9, 0.3, -1.0).astype(np.float32)
    scrap = head.copy()
    scrap[2:5, 8:24] = 0.6                                     # detached, above the head
    parts = _parts(size=32)
    parts["mr"]["heldout"] = (np.stack([head, scrap])[..., None],
                              [{"subject": "mial/sub-01"}] * 2)
    base = cache.write_prepared(tmp_path / "base", parts, {"key": "b"})
    out = cache.remix(base, tmp_path / "clean", split="heldout", drop_detached=True)
    cleaned = cache.load_prepared(out, "heldout", modality="mr")[0]
    np.testing.assert_array_equal(cleaned[0, ..., 0], head)
    np.testing.assert_array_equal(cleaned[1, ..., 0], head)   # the scrap is background now
    for split in ("train", "test"):                            # other splits as they were
        np.testing.assert_array_equal(cache.load_prepared(out, split, modality="mr")[0],
                                      parts["mr"][split][0])
    record = cache.read_manifest(out)["remix"]["drop_detached"]
    assert record["slices"] == 1 and record["mean_fraction"] > 0
    assert record["threshold"] == -0.8 and record["opening"] == 1
    with pytest.raises(DataError, match="nothing to change"):
        cache.remix(base, tmp_path / "same", split="heldout")
    assert not (tmp_path / "same").exists()


def test_mr_mix_command_line(tmp_path, capsys):
    import importlib.util
    import pathlib

    path = pathlib.Path(__file__).resolve().parents[2] / "benchmarks" / "mr_mix.py"
    spec = importlib.util.spec_from_file_location("mr_mix", path)
    mr_mix = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mr_mix)
    base = cache.write_prepared(tmp_path / "base", _parts(), {"key": "b"})
    other = cache.write_prepared(tmp_path / "other", _parts(), {"key": "o"})
    mr_mix.main([str(base), str(tmp_path / "mix"), "--drop", "^s0$", "--add", f"{other}=s[12]",
                 "--note", "run time only"])
    assert "mr/train 4 slices (1 dropped, 2 from" in capsys.readouterr().out
    assert cache.read_manifest(tmp_path / "mix")["note"] == "run time only"
    with pytest.raises(SystemExit, match="bad regular expression"):
        mr_mix.main([str(base), str(tmp_path / "bad"), "--drop", "["])
    assert not (tmp_path / "bad").exists()
    # a held-out split made of another folder's training slices (`DIR:SPLIT=REGEX`)
    mr_mix.main([str(base), str(tmp_path / "score"), "--split", "test", "--drop", ".",
                 "--add", f"{other}:train=s[01]"])
    assert "mr/test 2 slices (1 dropped, 2 from" in capsys.readouterr().out
    assert [m["subject"] for m in cache.load_prepared(tmp_path / "score", "test",
                                                      modality="mr")[1]] == ["s0", "s1"]
    mr_mix.main([str(base), str(tmp_path / "same"), "--split", "test", "--drop-detached",
                 "--figure", str(tmp_path / "same.png")])
    assert "detached parts dropped from 0 slices" in capsys.readouterr().out
    assert (tmp_path / "same.png").stat().st_size > 0
    with pytest.raises(SystemExit):  # a figure of before / after needs the same slices
        mr_mix.main([str(base), str(tmp_path / "f"), "--drop", ".", "--drop-detached",
                     "--figure", str(tmp_path / "f.png")])
    assert not (tmp_path / "f").exists()
    assert mr_mix.add_entry("/a:b/c:heldout=x", "train") == ("/a:b/c", "x", "heldout")
    assert mr_mix.add_entry("/a:b/c", "test") == ("/a:b/c", None, "test")


def test_split_address_reads_dir_colon_split():
    assert cache.split_address("../runs/data:heldout") == ("../runs/data", "heldout")
    assert cache.split_address("runs/data") == ("runs/data", None)
    assert cache.split_address("runs/data", "train") == ("runs/data", "train")
    # a colon not followed by a split name is part of the folder (C:\data, odd names)
    assert cache.split_address("C:/data", "test") == ("C:/data", "test")
    assert cache.split_address("runs/a:b:test") == ("runs/a:b", "test")
