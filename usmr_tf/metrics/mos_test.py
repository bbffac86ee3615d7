import json
import re

import numpy as np
import pytest

from usmr_tf.errors import ConfigError, DataError
from usmr_tf.metrics import mos, synthetic


def _sources():
    def stack(seeds):
        return np.stack([synthetic.head_phantom(32, seed=s) for s in seeds])[..., None]

    return {"ours": stack(range(5)), "cyclegan": -stack(range(5, 10)), "real": stack(range(10, 14))}


def test_split_counts():
    assert mos.split_counts(80, ["a", "b", "c"]) == {"a": 27, "b": 27, "c": 26}
    with pytest.raises(ConfigError):
        mos.split_counts(2, ["a", "b", "c"])


def test_page_is_blinded_and_self_contained(tmp_path):
    page, key_path, key = mos.build_mos_page(_sources(), 10, tmp_path / "page", seed=3)
    html = page.read_text()
    assert key_path == tmp_path / "page-key.json" and key_path.exists()
    assert list((tmp_path / "page").iterdir()) == [page]  # nothing else shipped with the page
    assert json.loads(key_path.read_text()) == key
    counts = {}
    for entry in key["images"].values():
        counts[entry["method"]] = counts.get(entry["method"], 0) + 1
    assert counts == {"ours": 4, "cyclegan": 3, "real": 3}
    # every image id is on the page, as an embedded PNG; no method name or key reference
    data = json.loads(re.search(
        r'<script id="study-data" type="application/json">(.*?)</script>', html, re.S).group(1))
    assert sorted(i["id"] for i in data["images"]) == sorted(key["images"])
    assert all(i["src"].startswith("data:image/png;base64,") for i in data["images"])
    assert [i["id"] for i in data["images"]] == sorted(i["id"] for i in data["images"])
    for leak in ("ours", "cyclegan", "key.json", "http://", "https://"):
        assert leak not in html.replace("data:image/png;base64,", "")
    # same seed -> same page; other seed -> other sample / ids
    _, _, again = mos.build_mos_page(_sources(), 10, tmp_path / "again", seed=3)
    _, _, other = mos.build_mos_page(_sources(), 10, tmp_path / "other", seed=4)
    assert again["images"] == key["images"] and other["images"] != key["images"]


def test_page_rejects_bad_sources(tmp_path):
    with pytest.raises(DataError, match="source .real. has 4 images, the page needs 5"):
        mos.build_mos_page(_sources(), 15, tmp_path / "page")
    with pytest.raises(ConfigError, match="must not be inside"):
        mos.build_mos_page(_sources(), 6, tmp_path / "page", key_path=tmp_path / "page" / "k.json")
    sources = _sources()
    sources["real"] = sources["real"][:, :16, :16]
    with pytest.raises(DataError, match="different image shapes"):
        mos.build_mos_page(sources, 6, tmp_path / "page")


KEY = {"methods": ["ours", "real"],
       "images": {"a": {"method": "ours"}, "b": {"method": "ours"}, "c": {"method": "real"}}}


def _write(path, rows):
    path.write_text("rater_id,group,image_id,rating\n" + "".join(f"{r}\n" for r in rows))
    return path


def test_mos_on_hand_checked_ratings(tmp_path):
    files = [
        _write(tmp_path / "e1.csv", ["e1,expert,a,3", "e1,expert,b,4", "e1,expert,c,5"]),
        _write(tmp_path / "e2.csv", ["e2,expert,a,5", "e2,expert,b,4", "e2,expert,c,5"]),
        _write(tmp_path / "e3.csv", ["e3,expert,c,4"]),
        _write(tmp_path / "b1.csv", ["b1,beginner,a,2", "b1,beginner,b,3"]),
    ]
    table = mos.mos_table(mos.read_ratings(files, KEY), KEY)
    # ours/expert: 3,4,5,4 -> mean 4, sd sqrt(2/3), t(.975,3) = 3.182 -> 3.182*0.8165/2 = 1.299
    cell = table["ours"]["expert"]
    assert (cell["mean"], cell["n"], cell["raters"]) == (4.0, 4, 2)
    assert cell["half_width"] == pytest.approx(1.299, abs=1e-3)
    assert cell["ci_low"] == pytest.approx(2.701, abs=1e-3)
    # ours/beginner: 2,3 -> mean 2.5, sd 0.7071, t(.975,1) = 12.706 -> 12.706*0.7071/1.4142 = 6.353
    assert table["ours"]["beginner"]["mean"] == 2.5
    assert table["ours"]["beginner"]["half_width"] == pytest.approx(6.353, abs=1e-3)
    # real/expert: 5,5,4 -> mean 4.667, sd 0.5774, t(.975,2) = 4.303 -> 4.303*0.5774/1.7321 = 1.434
    assert table["real"]["expert"]["mean"] == pytest.approx(4.6667, abs=1e-4)
    assert table["real"]["expert"]["half_width"] == pytest.approx(1.434, abs=1e-3)
    assert "beginner" not in table["real"]
    # all groups pooled: ours 3,4,5,4,2,3 -> mean 3.5
    assert table["ours"]["all"]["mean"] == 3.5 and table["ours"]["all"]["n"] == 6
    text = mos.format_mos_table(table)
    assert "4.00 ± 1.30 (n=4)" in text and "4.67 ± 1.43 (n=3)" in text


def test_single_rating_has_no_interval_and_later_file_wins(tmp_path):
    first = _write(tmp_path / "1.csv", ["r,expert,a,1"])
    second = _write(tmp_path / "2.csv", ["r,expert,a,4"])
    table = mos.mos_table(mos.read_ratings([first, second], KEY), KEY)
    assert table["ours"]["expert"]["mean"] == 4.0
    assert table["ours"]["expert"]["half_width"] is None


@pytest.mark.parametrize("row, message", [
    ("r,expert,a,6", "not an integer 1-5"),
    ("r,expert,a,2.5", "not an integer 1-5"),
    ("r,student,a,3", "not one of"),
    ("r,expert,zz,3", "not in the key"),
    (",expert,a,3", "empty rater_id"),
    ("r,expert,a", "wrong number of fields"),
])
def test_bad_rows_name_file_and_line(tmp_path, row, message):
    path = _write(tmp_path / "bad.csv", ["r,expert,b,3", row])
    with pytest.raises(DataError, match=re.escape(f"{path}:3") + ".*" + message):
        mos.read_ratings([path], KEY)


def test_bad_files(tmp_path):
    header = tmp_path / "header.csv"
    header.write_text("rater,group,image,score\nr,expert,a,3\n")
    with pytest.raises(DataError, match="expected CSV header"):
        mos.read_ratings([header], KEY)
    empty = _write(tmp_path / "empty.csv", [])
    with pytest.raises(DataError, match="no ratings"):
        mos.read_ratings([empty], KEY)
    bad_key = tmp_path / "key.json"
    bad_key.write_text("{not json")
    with pytest.raises(DataError, match="unreadable key"):
        mos.load_key(bad_key)
