import json

import pytest
from PIL import Image

from usmr_tf.cli import main as cli
from usmr_tf.metrics import synthetic
from usmr_tf.metrics.image_sets import unit_to_grey


@pytest.fixture
def folders(tmp_path):
    out = {}
    for name, seeds in (("ours", range(4)), ("real", range(4, 8))):
        folder = tmp_path / name
        folder.mkdir()
        for s in seeds:
            Image.fromarray(unit_to_grey(synthetic.head_phantom(40, seed=s))).save(
                folder / f"{s}.png")
        out[name] = folder
    return out


def test_make_then_score(folders, tmp_path, capsys):
    page = tmp_path / "study"
    assert cli.main(["mos", "make", "--images", f"ours={folders['ours']}", "--real",
                     str(folders["real"]), "--n", "6", "--out", str(page), "--size", "32"]) == 0
    key = json.loads((tmp_path / "study-key.json").read_text())
    assert key["methods"] == ["ours", "real"] and len(key["images"]) == 6
    html = (page / "index.html").read_text()
    assert "study-key" not in html and "key.json" not in html and "ours" not in html
    rows = ["rater_id,group,image_id,rating"]
    for i, image_id in enumerate(sorted(key["images"])):
        rows.append(f"a,expert,{image_id},{5 if key['images'][image_id]['method'] == 'real' else 2}")
        rows.append(f"b,beginner,{image_id},{1 + i % 5}")
    ratings = tmp_path / "r.csv"
    ratings.write_text("\n".join(rows) + "\n")
    out = tmp_path / "mos.json"
    assert cli.main(["mos", "score", str(ratings), "--key", str(tmp_path / "study-key.json"),
                     "--json", str(out)]) == 0
    table = json.loads(out.read_text())["mos"]
    assert table["real"]["expert"]["mean"] == 5.0 and table["ours"]["expert"]["mean"] == 2.0
    assert table["real"]["expert"]["half_width"] == 0.0  # no spread -> zero-width interval
    assert table["ours"]["all"]["n"] == 6
    assert "MOS (95% CI)" in capsys.readouterr().out


def test_bad_input_exits_2(folders, tmp_path, capsys):
    empty = tmp_path / "empty"
    empty.mkdir()
    cases = [
        (["mos", "make", "--images", f"ours={empty}", "--real", str(folders["real"]),
          "--out", str(tmp_path / "p1"), "--n", "4"], "no .png"),
        (["mos", "make", "--images", str(folders["ours"]), "--real", str(folders["real"]),
          "--out", str(tmp_path / "p2"), "--n", "4"], "METHOD=PATH"),
        (["mos", "make", "--images", f"ours={folders['ours']}", "--real", str(folders["real"]),
          "--out", str(tmp_path / "p3"), "--n", "20"], "the page needs 10"),
        (["mos", "score", str(tmp_path / "none.csv"), "--key", str(tmp_path / "none.json")],
         "unreadable key"),
    ]
    for argv, message in cases:
        assert cli.main(argv) == 2, argv
        assert message in capsys.readouterr().err
    assert not any((tmp_path / p).exists() for p in ("p1", "p2", "p3", "p3-key.json"))
