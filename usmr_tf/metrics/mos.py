"""Mean Opinion Score (MOS) study kit (paper §3.2, Table 1).

`build_mos_page` writes a self-contained static HTML page (images embedded as base64 PNG data
URIs, no server, no network) that shows a blinded, shuffled mix of real and synthesized MR
images; raters pick a group (expert / beginner), rate each image 1-5 and download a CSV with
columns `rater_id, group, image_id, rating`. The key mapping image ids to methods goes to a
separate JSON file that the page never references.

`score_ratings` reads those CSVs back and gives the MOS per method and rater group with a 95%
confidence interval from the t-distribution over the pooled ratings
(`mean ± t(0.975, n-1) * sd / sqrt(n)`, sample sd with n-1), as in Table 1.
"""

import base64
import csv
import hashlib
import importlib.resources
import io
import json
import math
import pathlib

import numpy as np

from usmr_tf.errors import ConfigError, DataError
from usmr_tf.atomic import write_text_atomic
from usmr_tf.metrics.image_sets import unit_to_grey

GROUPS = ("expert", "beginner")
REAL = "real"
CSV_COLUMNS = ("rater_id", "group", "image_id", "rating")
KEY_VERSION = 1


def default_key_path(out_dir):
    """`<out_dir>-key.json`: beside the page folder, so sharing the folder never ships the key."""
    out_dir = pathlib.Path(out_dir)
    return out_dir.with_name(out_dir.name + "-key.json")


def split_counts(n, names):
    """Splits `n` images as evenly as possible over `names` (earlier names get the remainder)."""
    if n < len(names):
        raise ConfigError(f"--n {n} is smaller than the number of image sources ({len(names)})")
    base, extra = divmod(n, len(names))
    return {name: base + (i < extra) for i, name in enumerate(names)}


def _png_data_uri(image):
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(unit_to_grey(np.asarray(image)[..., 0])).save(buffer, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def build_mos_page(sources, n, out_dir, seed=0, key_path=None, source_paths=None):
    """Writes `out_dir/index.html` and the key JSON; returns `(page_path, key_path, key)`.

    Args:
        sources: ordered dict `name -> float [N, S, S, 1]` in [-1, 1], all the same `S`; the
            real MR set is named `"real"`.
        n: total number of images on the page, split evenly over the sources.
        source_paths: optional `name -> path` recorded in the key.
    """
    if not sources:
        raise ConfigError("no image sources given")
    shapes = {name: np.asarray(images).shape[1:] for name, images in sources.items()}
    if len(set(shapes.values())) != 1:
        raise DataError(f"image sources have different image shapes: {shapes}")
    counts = split_counts(int(n), list(sources))
    rng = np.random.default_rng(seed)
    items = []
    for name, images in sources.items():
        if len(images) < counts[name]:
            raise DataError(
                f"source {name!r} has {len(images)} images, the page needs {counts[name]}",
                (source_paths or {}).get(name))
        for index in sorted(rng.choice(len(images), counts[name], replace=False).tolist()):
            items.append((name, index))
    ids = set()
    while len(ids) < len(items):  # random, meaningless ids: nothing about the method leaks
        ids.add(f"{int(rng.integers(0, 16**8)):08x}")
    ids = sorted(ids)
    rng.shuffle(ids)
    order = rng.permutation(len(items))
    images, key_images = [], {}
    for image_id, item in zip(ids, order):
        name, index = items[item]
        images.append({"id": image_id, "src": _png_data_uri(sources[name][index])})
        key_images[image_id] = {"method": name, "index": int(index)}
    images.sort(key=lambda item: item["id"])  # page order: by id, i.e. unrelated to the method
    study_id = hashlib.sha256(
        json.dumps(sorted(key_images.items())).encode() + str(seed).encode()).hexdigest()[:12]
    key = {
        "version": KEY_VERSION,
        "study_id": study_id,
        "seed": int(seed),
        "n": len(items),
        "methods": list(sources),
        "sources": {k: str(v) for k, v in (source_paths or {}).items()},
        "images": key_images,
    }
    template = importlib.resources.files("usmr_tf.metrics").joinpath("templates/mos_page.html")
    payload = json.dumps({"study_id": study_id, "images": images}).replace("</", "<\\/")
    html = template.read_text(encoding="utf-8").replace("__STUDY_JSON__", payload)
    out_dir = pathlib.Path(out_dir)
    key_path = pathlib.Path(key_path) if key_path else default_key_path(out_dir)
    if out_dir.resolve() in key_path.resolve().parents:
        raise ConfigError(f"{key_path}: the key must not be inside the page folder {out_dir}")
    out_dir.mkdir(parents=True, exist_ok=True)
    key_path.parent.mkdir(parents=True, exist_ok=True)
    write_text_atomic(key_path, json.dumps(key, indent=2) + "\n")
    page = out_dir / "index.html"
    write_text_atomic(page, html)
    return page, key_path, key


def load_key(path):
    path = pathlib.Path(path)
    try:
        key = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DataError(f"unreadable key file ({exc})", path) from exc
    if not isinstance(key, dict) or not isinstance(key.get("images"), dict) or "methods" not in key:
        raise DataError("not a MOS key file (needs 'methods' and 'images')", path)
    return key


def read_ratings(paths, key):
    """Reads rating CSVs; returns `{(rater_id, group, image_id): rating}`.

    A rater who downloads twice gives the same (rater, group, image) again: the later file
    (argument order) wins. Raises `DataError` naming the file and line for bad rows.
    """
    if not paths:
        raise ConfigError("no rating CSV files given")
    ratings = {}
    for path in map(pathlib.Path, paths):
        try:
            text = path.read_text(encoding="utf-8-sig")
        except (OSError, UnicodeDecodeError) as exc:
            raise DataError(f"unreadable ratings file ({exc})", path) from exc
        reader = csv.DictReader(io.StringIO(text))
        if reader.fieldnames is None or [f.strip() for f in reader.fieldnames] != list(CSV_COLUMNS):
            raise DataError(f"expected CSV header {','.join(CSV_COLUMNS)}, got "
                            f"{','.join(reader.fieldnames or []) or 'nothing'}", path)
        rows = 0
        for line, row in enumerate(reader, start=2):
            where = f"{path}:{line}"
            if None in row or any(v is None for v in row.values()):
                raise DataError("wrong number of fields", where)
            rater, group = row["rater_id"].strip(), row["group"].strip().lower()
            image_id, rating = row["image_id"].strip(), row["rating"].strip()
            if not rater:
                raise DataError("empty rater_id", where)
            if group not in GROUPS:
                raise DataError(f"group {group!r} is not one of {', '.join(GROUPS)}", where)
            if image_id not in key["images"]:
                raise DataError(f"image_id {image_id!r} is not in the key (wrong study?)", where)
            if rating not in ("1", "2", "3", "4", "5"):
                raise DataError(f"rating {rating!r} is not an integer 1-5", where)
            ratings[(rater, group, image_id)] = int(rating)
            rows += 1
        if rows == 0:
            raise DataError("no ratings in file", path)
    return ratings


def mean_confidence_interval(values, confidence=0.95):
    """`(mean, half_width, sd)`: t-distribution interval; half_width/sd are None for n < 2."""
    from scipy import stats

    values = np.asarray(values, dtype=np.float64)
    mean = float(values.mean())
    if values.size < 2:
        return mean, None, None
    sd = float(values.std(ddof=1))
    t = float(stats.t.ppf(0.5 + confidence / 2, values.size - 1))
    return mean, t * sd / math.sqrt(values.size), sd


def mos_table(ratings, key, confidence=0.95):
    """`{method: {group: stats}}` for groups expert, beginner and all (groups without ratings
    are left out); stats hold mean, ci_low, ci_high, half_width, sd, n, raters."""
    table = {}
    for method in key["methods"]:
        table[method] = {}
        for group in (*GROUPS, "all"):
            selected = [
                (rater, value) for (rater, g, image_id), value in ratings.items()
                if key["images"][image_id]["method"] == method and group in (g, "all")
            ]
            if not selected:
                continue
            values = [value for _, value in selected]
            mean, half, sd = mean_confidence_interval(values, confidence)
            table[method][group] = {
                "mean": mean,
                "half_width": half,
                "ci_low": None if half is None else mean - half,
                "ci_high": None if half is None else mean + half,
                "sd": sd,
                "n": len(values),
                "raters": len({rater for rater, _ in selected}),
            }
    return table


def format_mos_table(table):
    """Table 1 layout: one row per rater group, one column per method, `mean ± half (n)`."""
    methods = list(table)
    header = ["MOS (95% CI)"] + methods
    rows = [header]
    for group in (*GROUPS, "all"):
        row = [group]
        for method in methods:
            cell = table[method].get(group)
            if cell is None:
                row.append("-")
            elif cell["half_width"] is None:
                row.append(f"{cell['mean']:.2f} (n={cell['n']})")
            else:
                row.append(f"{cell['mean']:.2f} ± {cell['half_width']:.2f} (n={cell['n']})")
        rows.append(row)
    widths = [max(len(r[i]) for r in rows) for i in range(len(header))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)
