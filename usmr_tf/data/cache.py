"""The prepared-slice cache: a directory written atomically by `usmr prepare`.

Layout::

    DIR/manifest.json          format, key (hash of the preparation parameters and input
                               files), params, counts
    DIR/<modality>/<split>.npy float32 [N, H, W, 1] in [-1, 1]   (modality: us, mr;
                               split: train, test, and heldout when a source of the
                               config has `holdout: true`: a left-out source)
    DIR/<modality>/<split>.json per-slice metadata (list of dicts, same order)

`load_prepared(DIR/us, "train")` (or `load_prepared(DIR, "train", modality="us")`)
returns `(images, meta)`.
"""

import hashlib
import json
import os
import pathlib
import re
import shutil
import tempfile

import numpy as np

from usmr_tf.atomic import swap_in_dir
from usmr_tf.data.volume import drop_detached_parts
from usmr_tf.errors import DataError

FORMAT = "usmr-tf/prepared-slices/1"
MANIFEST = "manifest.json"
SPLITS = ("train", "test", "heldout")
# `remix(drop_detached=True)`: `volume.drop_detached_parts`'s threshold and opening (in the key)
DETACHED_THRESHOLD, DETACHED_OPENING = -0.8, 1


def params_key(params):
    """SHA-256 of the canonical JSON of `params` (the cache key)."""
    text = json.dumps(params, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def read_manifest(path):
    """The manifest dict of a prepared dataset directory, or None when there is none."""
    manifest = pathlib.Path(path) / MANIFEST
    if not manifest.is_file():
        return None
    try:
        data = json.loads(manifest.read_text())
    except (OSError, ValueError) as exc:
        raise DataError(f"unreadable manifest: {exc}", manifest) from None
    return data if isinstance(data, dict) and data.get("format") == FORMAT else None


def write_prepared(out, parts, manifest):
    """Writes `parts[modality][split] = (images, meta)` and `manifest` to `out` atomically.

    Everything goes to a temporary sibling directory first, which is renamed to `out`
    (replacing a previous prepared dataset there) only once complete; on any error it
    is removed, so no half-written dataset is ever left behind.
    """
    out = pathlib.Path(out)
    if out.exists() and read_manifest(out) is None:
        if not out.is_dir() or any(out.iterdir()):
            raise DataError("exists and is not a prepared dataset; refusing to replace it", out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = pathlib.Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-", dir=out.parent))
    aside = None
    try:
        aside = pathlib.Path(tempfile.mkdtemp(prefix=f".{out.name}.old-", dir=out.parent))
        os.chmod(tmp, 0o755)  # mkdtemp makes it private
        counts = {}
        for modality, splits in parts.items():
            (tmp / modality).mkdir()
            counts[modality] = {}
            for split, (images, meta) in splits.items():
                images = np.asarray(images, dtype=np.float32)
                if len(images) != len(meta):
                    raise ValueError(f"{modality}/{split}: {len(images)} images, {len(meta)} meta")
                np.save(tmp / modality / f"{split}.npy", images)
                (tmp / modality / f"{split}.json").write_text(json.dumps(meta))
                counts[modality][split] = int(len(images))
        manifest = dict(manifest, format=FORMAT, counts=counts)
        (tmp / MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=True))
        swap_in_dir(tmp, out, aside)  # a dataset already there is moved aside, then removed
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    finally:
        if aside is not None:
            shutil.rmtree(aside, ignore_errors=True)
    return out


def split_address(text, default=None):
    """`DIR:SPLIT` -> (DIR, SPLIT); `DIR` alone (or a colon not followed by a split name, as
    in a Windows drive) -> (DIR, `default`). The one grammar of the benchmarks' set options."""
    head, colon, tail = str(text).rpartition(":")
    if colon and head and tail in SPLITS:
        return head, tail
    return str(text), default


def _modality_dir(path, modality):
    path = pathlib.Path(path)
    if not path.is_dir():
        raise DataError("prepared dataset folder not found", path)
    if modality is not None:
        return path / modality
    if (path / "train.npy").exists() or (path / "test.npy").exists():
        return path
    found = sorted(p.name for p in path.iterdir() if (p / "train.npy").exists())
    if len(found) == 1:
        return path / found[0]
    raise DataError(
        "not a prepared modality folder (no train.npy); pass modality= "
        f"(found: {', '.join(found) or 'none'})", path)


def load_prepared(path, split="train", modality=None):
    """Reads `(images float32 [N, H, W, 1], meta list of dicts)` from a prepared dataset.

    Args:
        path: a modality folder (`DIR/us`, `DIR/mr`) or the dataset folder `DIR`
            together with `modality`.
        split: "train", "test" or "heldout" (the slices of the sources prepared with
            `holdout: true`, kept out of train and test for leave-one-source-out scoring).
    """
    if split not in SPLITS:
        raise DataError(f"unknown split {split!r} (expected one of {SPLITS})", path)
    folder = _modality_dir(path, modality)
    npy, meta_path = folder / f"{split}.npy", folder / f"{split}.json"
    if split == "heldout" and not npy.is_file() and (folder / "train.npy").is_file():
        raise DataError("no held-out split here (prepared without a `holdout: true` source)",
                        folder)
    for f in (npy, meta_path):
        if not f.is_file():
            raise DataError("missing from the prepared dataset (run `usmr prepare` again)", f)
    try:
        images = np.load(npy, allow_pickle=False)
    except Exception as exc:
        raise DataError(f"cannot read slices: {type(exc).__name__}: {exc}", npy) from None
    try:
        meta = json.loads(meta_path.read_text())
    except ValueError as exc:
        raise DataError(f"cannot read slice metadata: {exc}", meta_path) from None
    if images.ndim != 4 or images.shape[-1] != 1 or images.dtype != np.float32:
        raise DataError(f"expected float32 [N, H, W, 1], got {images.dtype} {images.shape}", npy)
    if len(meta) != len(images):
        raise DataError(f"{len(images)} slices but {len(meta)} metadata entries", meta_path)
    return images, meta


def _slice_pattern(pattern, where):
    """`pattern` compiled (None stays None); a bad regular expression is a DataError."""
    if pattern is None:
        return None
    try:
        return re.compile(pattern)
    except re.error as exc:
        raise DataError(f"bad regular expression {pattern!r}: {exc}", where) from None


def _slice_matches(pattern, meta):
    """Whether a slice's `subject` or the file name of its `source` matches (re.search).

    The source's file name only, not its folders: every MR folder of ../shared/data holds a
    year ("2021"), which would make a pattern such as "21" take all of them."""
    name = pathlib.Path(str(meta.get("source", ""))).name
    return bool(pattern.search(str(meta.get("subject", ""))) or pattern.search(name))


def remix(base, out, *, modality="mr", split="train", drop=None, add=(), drop_detached=False,
          note=""):
    """A copy of the prepared dataset `base` at `out` whose `modality/split` slices are changed.

    For diagnostics of what the training data or the reference MR is made of (issue 18's dose,
    composition and swap tests): the slices of `base` whose `subject` (e.g. "spina_bifida/22")
    or source file name (e.g. "ref-space-brain.nii.gz") matches the regular expression `drop`
    (re.search) are left out, then the same split of each `add` folder is appended (an entry is
    a folder, or `(folder, regex)` to take only the slices whose subject or source file name
    matches, or `(folder, regex, from_split)` to take them from another split of that folder,
    e.g. a held-out source's slices into `train`, or training slices of one subject as the
    `heldout` split; regex None = all). With `drop_detached`, every slice of the changed split
    then loses the parts detached from its head (`volume.drop_detached_parts`: for a source
    whose brain mask keeps scraps, as the MIAL fetus's held-out slices; it would also remove
    detached anatomy such as a cerebellum cut apart by an oblique plane). Every other modality
    and split is copied unchanged. The manifest keeps `base`'s params, records the change
    (resolved folders, their manifest keys and splits) under `remix` and gets a key from those.
    Refused, as a `DataError` naming the folder, before anything is written: a folder that is
    not prepared, `out` being `base` or an `add` folder, a bad regex, a `drop` or an `add` regex
    that matches no slice, another image size, a result without slices, nothing to change.
    Returns `out`.
    """
    base, out = pathlib.Path(base).resolve(), pathlib.Path(out).resolve()
    manifest = read_manifest(base)
    if manifest is None:
        raise DataError("not a prepared dataset (`usmr prepare`)", base)
    if isinstance(add, (str, os.PathLike)):
        add = [add]
    if drop is None and not add and not drop_detached:
        raise DataError("nothing to change: give drop, add or drop_detached", base)
    entries = []
    for entry in add:
        if isinstance(entry, (str, os.PathLike)):
            folder, pattern, from_split = entry, None, split
        elif isinstance(entry, (tuple, list)) and len(entry) in (2, 3):
            folder, pattern, from_split = (*entry, split)[:3]
            from_split = split if from_split is None else from_split
        else:
            raise DataError(f"add entry {entry!r} is not a folder, (folder, regex) or "
                            "(folder, regex, split)", base)
        folder = pathlib.Path(folder).resolve()
        if from_split not in SPLITS:
            raise DataError(f"add split {from_split!r} is not one of {', '.join(SPLITS)}",
                            folder)
        added_manifest = read_manifest(folder)
        if added_manifest is None:
            raise DataError("not a prepared dataset (`usmr prepare`)", folder)
        entries.append((folder, _slice_pattern(pattern, folder), from_split, added_manifest))
    if out == base or out in [e[0] for e in entries]:
        raise DataError("the output would replace a folder it is made from", out)
    drop_re = _slice_pattern(drop, base)

    parts = {}
    for mod, splits in manifest.get("counts", {}).items():
        parts[mod] = {s: load_prepared(base, s, modality=mod) for s in splits}
    if split not in parts.get(modality, {}):
        raise DataError(f"no {modality}/{split} slices to change", base)
    images, meta = parts[modality][split]
    keep = [i for i, m in enumerate(meta) if drop_re is None or not _slice_matches(drop_re, m)]
    if drop_re is not None and len(keep) == len(meta):
        raise DataError(f"drop {drop!r} matches no {modality}/{split} slice", base)
    chunks, metas, added = [images[keep]], [meta[i] for i in keep], []
    for folder, pattern, from_split, added_manifest in entries:
        extra, extra_meta = load_prepared(folder, from_split, modality=modality)
        if extra.shape[1:] != images.shape[1:]:
            raise DataError(f"{extra.shape[1]} px slices, the base has {images.shape[1]} px",
                            folder)
        take = [i for i, m in enumerate(extra_meta)
                if pattern is None or _slice_matches(pattern, m)]
        if not take:
            raise DataError(f"{pattern.pattern!r} matches no {modality}/{from_split} slice",
                            folder)
        chunks.append(extra[take])
        metas += [extra_meta[i] for i in take]
        added.append({"folder": str(folder), "key": added_manifest.get("key"),
                      "match": None if pattern is None else pattern.pattern,
                      "split": from_split, "slices": len(take)})
    if not metas:
        raise DataError(f"remix leaves no {modality}/{split} slices", base)
    images = np.concatenate(chunks)
    detached = None
    if drop_detached:
        images, removed = drop_detached_parts(images, DETACHED_THRESHOLD, DETACHED_OPENING)
        detached = {"threshold": DETACHED_THRESHOLD, "opening": DETACHED_OPENING,
                    "slices": int((removed > 0).sum()), "mean_fraction": float(removed.mean())}
    parts[modality][split] = (images, metas)
    record = {"base": str(base), "base_key": manifest.get("key"), "modality": modality,
              "split": split, "drop": drop, "dropped": len(meta) - len(keep), "add": added,
              "drop_detached": detached}
    new = {k: v for k, v in manifest.items() if k not in ("counts", "format")}
    # the key follows the data (the folders' own keys), not where the folders lie
    # (an add from the changed split itself keeps its two-field form: earlier keys stay)
    sources = [(a["key"], a["match"]) + (() if a["split"] == split else (a["split"],))
               for a in added]
    contents = {"base_key": record["base_key"], "modality": modality, "split": split,
                "drop": drop, "add": sources}
    if drop_detached:  # (absent otherwise: earlier keys stay)
        contents["drop_detached"] = [DETACHED_THRESHOLD, DETACHED_OPENING]
    new.update(remix=record, key=params_key(contents))
    if note:
        new["note"] = f"{manifest.get('note', '')}; {note}".lstrip("; ")
    return write_prepared(out, parts, new)
