"""Config-driven preparation of the slice cache (the library behind `usmr prepare`).

A config (YAML) lists sources per modality::

    data_root: ../shared/data      # relative to the working directory
    size: 128
    test_fraction: 0.2
    seed: 0
    mr:
      - name: spina_bifida
        kind: nifti                # nifti | hc18 | images
        root: mr/spina_bifida_fidon2021
        pattern: "*/srr.nii.gz"
        mask: "{dir}/mask.nii.gz"  # optional, relative to root; {dir}, {name} of the file
        subject: "GA(\\d+)"        # regex on the path relative to root (group 1)
        # group: name              # subject namespace; sources of the same subjects share it
        # holdout: true            # all its slices go to the separate split "heldout"
        band: [0.40, 0.56]         # relative slice positions kept (0 = inferior end of the brain)
        fill: 0.72                 # brain's longer in-plane side / frame size
        rotate: 0                  # in-plane degrees (counter-clockwise) or "auto"
        # tilts: [-8, 0, 8]        # out-of-plane degrees about left-right: one set of
        #                          # (oblique) slices per tilt, meta "tilt" (default [0])
        # foreground: largest      # no mask: largest part of the Otsu foreground only
        # drop_detached: true      # prepared slices lose parts detached from the head
        #                          # (volume.drop_detached_parts; one source's mask scraps)
    us:
      - name: hc18
        kind: hc18
        root: us/hc18/training_set

Per-source settings default to the top-level ones (see `DEFAULTS`). Subjects are
split 80/20 per modality (`splits.split_subjects`), so no subject is in both splits.
`split: per_group` (top level) splits each group's subjects on their own instead of the
modality's pooled list (`pooled`, the default): adding a source then leaves the split of
the others unchanged (the same test exams as an older recipe, or as the head locator's
per-folder split).
Sources with `holdout: true` (leave-one-source-out evaluation) take no part in that
split: every slice of theirs goes to a third split, `heldout`, written only when some
source of the modality is held out; a held-out source may not share its `group` with a
source that is not.
"""

import os
import pathlib
import re
import time

import numpy as np
import yaml

import usmr_tf
from usmr_tf.atomic import exclusive
from usmr_tf.data import cache, hc18
from usmr_tf.data.images import image_to_slice, is_image, load_image
from usmr_tf.data.nifti import is_nifti
from usmr_tf.data.splits import split_items
from usmr_tf.data.volume import FOREGROUNDS, drop_detached_parts, volume_to_slices
from usmr_tf.errors import ConfigError, DataError

MODALITIES = ("us", "mr")
KINDS = ("nifti", "hc18", "images")
DEFAULTS = {
    "size": 128,
    "test_fraction": 0.2,
    "seed": 0,
    "percentiles": [1.0, 99.0],
    "axis": 2,
    "spacing": None,
    "min_foreground": 0.25,
    "margin": 0.05,
    "align": True,
    "head_fraction": 0.8,
    # NIfTI sources only (see `volume.volume_to_slices`): plane matching.
    "band": None,
    "fill": None,
    "rotate": 0,
    "foreground": "otsu",   # without a mask: "otsu" | "largest" (volume.volume_to_slices)
    "tilts": [0],           # NIfTI: out-of-plane tilts (degrees), one slice set each
    "split": "pooled",      # "pooled" | "per_group" (top level only)
}
_GLOBAL_ONLY = ("size", "test_fraction", "seed", "split")
SPLITS = ("pooled", "per_group")
_SOURCE_KEYS = {"name", "group", "kind", "root", "pattern", "subject", "mask", "limit",
                "holdout", "drop_detached"} | (
    set(DEFAULTS) - set(_GLOBAL_ONLY))
_DEFAULT_PATTERN = {"nifti": "*.nii*", "hc18": "*HC.png", "images": "*.png"}


def load_config(path):
    """Reads a YAML preparation config (ConfigError when unreadable or not a mapping)."""
    path = pathlib.Path(path)
    try:
        config = yaml.safe_load(path.read_text())
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read config: {exc.strerror or exc}") from None
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: invalid YAML: {exc}") from None
    if not isinstance(config, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level")
    return config


def resolve_config(config, data_root=None):
    """Validates a config and fills defaults; returns a JSON-able dict with absolute roots."""
    unknown = set(config) - set(DEFAULTS) - {"data_root", *MODALITIES}
    if unknown:
        raise ConfigError(f"unknown config keys: {sorted(unknown)}")
    root = pathlib.Path(data_root or config.get("data_root") or ".").expanduser().resolve()
    out = {k: config.get(k, v) for k, v in DEFAULTS.items() if k in _GLOBAL_ONLY}
    if not isinstance(out["size"], int) or out["size"] < 8:
        raise ConfigError(f"size must be an integer >= 8, got {out['size']!r}")
    if out["split"] not in SPLITS:
        raise ConfigError(f"split must be one of {SPLITS}, got {out['split']!r}")
    out["data_root"] = str(root)
    if not any(config.get(m) for m in MODALITIES):
        raise ConfigError(f"the config lists no sources under {' or '.join(MODALITIES)}")
    for modality in MODALITIES:
        sources = config.get(modality) or []
        if not isinstance(sources, list):
            raise ConfigError(f"{modality}: expected a list of sources")
        resolved, names = [], set()
        for i, source in enumerate(sources):
            if not isinstance(source, dict):
                raise ConfigError(f"{modality}[{i}]: expected a mapping")
            bad = set(source) - _SOURCE_KEYS
            if bad:
                raise ConfigError(f"{modality}[{i}]: unknown keys {sorted(bad)}")
            src = {k: source.get(k, config.get(k, v)) for k, v in DEFAULTS.items()
                   if k not in _GLOBAL_ONLY}
            src["kind"] = source.get("kind", "nifti")
            if src["kind"] not in KINDS:
                raise ConfigError(f"{modality}[{i}]: kind must be one of {KINDS}")
            if "root" not in source:
                raise ConfigError(f"{modality}[{i}]: missing 'root'")
            src["root"] = str((root / str(source["root"])).resolve())
            src["name"] = str(source.get("name") or pathlib.Path(src["root"]).name)
            if src["name"] in names:
                raise ConfigError(f"{modality}: duplicate source name {src['name']!r}")
            names.add(src["name"])
            # Subject ids are namespaced by group (default: the source name); sources
            # holding data of the same subjects must share a group.
            src["group"] = str(source.get("group") or src["name"])
            src["pattern"] = str(source.get("pattern") or _DEFAULT_PATTERN[src["kind"]])
            src["subject"] = source.get("subject")
            src["mask"] = source.get("mask")
            src["limit"] = source.get("limit")
            where = f"{modality}[{i}] ({src['name']})"
            src["holdout"] = _flag(source, "holdout", where)
            _check_plane_options(src, where)
            # Written only when set (as the cleanup's [threshold, opening], like cache.remix's
            # record), so that the keys of recipes without it stay as they were.
            if _flag(source, "drop_detached", where):
                if src["kind"] != "nifti":
                    raise ConfigError(f"{where}: drop_detached is for NIfTI sources (kind: "
                                      f"nifti), not {src['kind']!r}")
                src["drop_detached"] = [cache.DETACHED_THRESHOLD, cache.DETACHED_OPENING]
            if src["subject"] is not None:
                try:
                    re.compile(src["subject"])
                except re.error as exc:
                    raise ConfigError(f"{modality}[{i}]: bad subject regex: {exc}") from None
            resolved.append(src)
        _check_holdout(resolved, modality)
        out[modality] = resolved
    return out


def _flag(source, key, where):
    """A source's true/false option (default false); ConfigError for any other value."""
    value = source.get(key, False)
    if not isinstance(value, bool):
        raise ConfigError(f"{where}: {key} must be true or false, got {value!r}")
    return value


def _check_holdout(sources, modality):
    """ConfigError when held-out sources share a group with training sources, or when
    every source of a modality is held out (nothing left to train on)."""
    held = {s["group"] for s in sources if s["holdout"]}
    kept = {s["group"] for s in sources if not s["holdout"]}
    if held & kept:
        raise ConfigError(f"{modality}: group(s) {sorted(held & kept)} hold both held-out and "
                          "training sources; hold out every source of a group or none")
    if sources and not kept:
        raise ConfigError(f"{modality}: every source has holdout: true; nothing left to train on")


def _check_plane_options(src, where):
    """ConfigError unless `band`, `fill` and `rotate` of a resolved source are valid."""
    band = src["band"]
    if band is not None:
        ok = (isinstance(band, (list, tuple)) and len(band) == 2
              and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in band))
        if not ok or not 0 <= band[0] < band[1] <= 1:
            raise ConfigError(f"{where}: band must be [low, high] with 0 <= low < high <= 1, "
                              f"got {band!r}")
        src["band"] = [float(v) for v in band]
    fill = src["fill"]
    if fill is not None and (isinstance(fill, bool) or not isinstance(fill, (int, float))
                             or not 0 < fill <= 1):
        raise ConfigError(f"{where}: fill must be a number in (0, 1], got {fill!r}")
    if src["foreground"] not in FOREGROUNDS:
        raise ConfigError(f"{where}: foreground must be one of {FOREGROUNDS}, got "
                          f"{src['foreground']!r}")
    rotate = src["rotate"]
    if rotate != "auto" and (isinstance(rotate, bool) or not isinstance(rotate, (int, float))):
        raise ConfigError(f"{where}: rotate must be degrees or 'auto', got {rotate!r}")
    tilts = src["tilts"]
    ok = (isinstance(tilts, list) and tilts and len(set(tilts)) == len(tilts) and all(
        isinstance(t, (int, float)) and not isinstance(t, bool) and abs(t) < 45 for t in tilts))
    if not ok:
        raise ConfigError(f"{where}: tilts must be a non-empty list of distinct degrees in "
                          f"(-45, 45), got {tilts!r}")
    if src["kind"] == "nifti" and src["axis"] == 0 and tilts != [0]:
        raise ConfigError(f"{where}: tilts turn the volume about the x axis: use axis 1 or 2")
    src["tilts"] = [float(t) for t in tilts]


def _name(path):
    name = path.name
    for suffix in (".nii.gz", ".nii", ".png", ".jpg", ".jpeg"):
        if name.lower().endswith(suffix):
            return name[: -len(suffix)]
    return name


def list_files(source):
    """[(path, subject id, mask path or None)] of one resolved source, sorted by path."""
    root = pathlib.Path(source["root"])
    if not root.is_dir():
        raise DataError("source folder not found", root)
    accept = is_nifti if source["kind"] == "nifti" else is_image
    files = sorted(p for p in root.glob(source["pattern"])
                   if p.is_file() and accept(p) and not p.name.endswith("_Annotation.png"))
    if not files:
        what = {"nifti": "NIfTI", "hc18": "HC18 image", "images": "image"}[source["kind"]]
        raise DataError(f"no {what} files matching {source['pattern']!r} (empty folder?)",
                        root)
    if source["limit"]:
        files = files[: int(source["limit"])]
    items = []
    for path in files:
        rel = path.relative_to(root).as_posix()
        if source["subject"]:
            match = re.search(source["subject"], rel)
            if not match:
                raise DataError(f"subject pattern {source['subject']!r} does not match", path)
            subject = match.group(1) if match.groups() else match.group(0)
        elif source["kind"] == "hc18":
            subject = hc18.subject_id(path)
        else:
            subject = _name(path) if "/" not in rel else rel.rsplit("/", 1)[0]
        mask = None
        if source["mask"]:
            fields = {"dir": path.parent.relative_to(root).as_posix(), "name": _name(path)}
            mask = root / source["mask"].format(**fields)
        items.append((path, f"{source['group']}/{subject}", mask))
    return items


def _slices_of(path, subject, mask, source, size, modality):
    """(slices [n, size, size, 1], per-slice meta) of one file."""
    base = {"subject": subject, "source": str(path), "modality": modality,
            "dataset": source["name"]}
    pct = tuple(source["percentiles"])
    if source["kind"] == "nifti":
        chunks, meta = [], []
        for tilt in source["tilts"]:
            slices, geometry = volume_to_slices(
                path, source["axis"], size, mask=mask, spacing=source["spacing"],
                min_foreground=source["min_foreground"], margin=source["margin"],
                percentiles=pct, band=source["band"], fill=source["fill"],
                rotate=source["rotate"], foreground=source["foreground"], tilt=tilt)
            geo = geometry.to_dict()
            if source.get("drop_detached"):
                slices = drop_detached_parts(slices, *source["drop_detached"])[0]
            chunks.append(slices)
            meta += [dict(base, kind="volume", axis=geometry.axis, slice_index=idx, position=j,
                          tilt=tilt, geometry=geo)
                     for j, idx in enumerate(geometry.slice_indices)]
        if not meta:
            raise DataError("no slice has enough foreground", path)
        return np.concatenate(chunks, axis=0), meta
    if source["kind"] == "hc18":
        image, transform = hc18.load_hc18(path, size, align=source["align"],
                                          head_fraction=source["head_fraction"], percentiles=pct)
    else:
        mask_image = load_image(mask) > 0 if mask is not None else None
        image, transform = image_to_slice(load_image(path), size, mask=mask_image,
                                          percentiles=pct, path=path)
    return image[None], [dict(base, kind="image", slice_index=0, position=0,
                              transform=transform)]


def input_files(config):
    """{modality: [(source, path, subject, mask)]} for a resolved config."""
    return {m: [(src, *item) for src in config[m] for item in list_files(src)]
            for m in MODALITIES if config[m]}


def dataset_key(config, files):
    """Cache key: the resolved parameters plus every input file's path, size and mtime."""
    stamp = []
    for modality, items in sorted(files.items()):
        for _, path, _, mask in items:
            for p in (path, mask):
                if p is not None and pathlib.Path(p).exists():
                    st = os.stat(p)
                    stamp.append([modality, str(p), st.st_size, st.st_mtime_ns])
    return cache.params_key({"format": cache.FORMAT, "version": usmr_tf.__version__,
                             "config": config, "files": stamp})


def _split_pool(pool, subjects, groups, config):
    """{"train", "test"}: the ``pool`` indices (slices not held out) split by subject, over
    the whole pool (``split: pooled``) or within each group (``per_group``); ``subjects`` and
    ``groups`` are per slice."""
    members = {}
    for i in pool:
        members.setdefault(groups[i] if config["split"] == "per_group" else "", []).append(i)
    train, test = [], []
    for idx in members.values():
        idx = np.asarray(idx, dtype=np.int64)
        tr, te = split_items([subjects[i] for i in idx], config["test_fraction"], config["seed"])
        train.append(idx[tr])
        test.append(idx[te])
    return {"train": np.sort(np.concatenate(train)), "test": np.sort(np.concatenate(test))}


def prepare_arrays(config, files=None, log=None):
    """Reads and splits every source: {modality: {split: (images, meta)}}.

    Splits are "train" and "test" (by subject, `config["test_fraction"]`), plus
    "heldout" holding every slice of the `holdout: true` sources when there are any.
    """
    files = input_files(config) if files is None else files
    size = config["size"]
    parts = {}
    for modality, items in files.items():
        chunks, meta, held, groups = [], [], [], []
        for source, path, subject, mask in items:
            slices, slice_meta = _slices_of(path, subject, mask, source, size, modality)
            chunks.append(slices)
            meta.extend(slice_meta)
            held.extend([bool(source.get("holdout"))] * len(slice_meta))
            groups.extend([source["group"]] * len(slice_meta))
        images = np.concatenate(chunks, axis=0)
        held = np.asarray(held, dtype=bool)
        pool = np.flatnonzero(~held)
        splits = _split_pool(pool, [m["subject"] for m in meta], groups, config)
        if held.any():
            splits["heldout"] = np.flatnonzero(held)
        parts[modality] = {name: (images[idx], [meta[i] for i in idx])
                           for name, idx in splits.items()}
        if log:
            counts = " / ".join(f"{len(idx)} {name}" for name, idx in splits.items())
            subjects = " / ".join(str(len({meta[i]["subject"] for i in idx}))
                                  for idx in splits.values())
            log(f"{modality}: {len(items)} files -> {counts} slices ({subjects} subjects)")
            if len({m["dataset"] for m in meta}) > 1:
                for name in dict.fromkeys(m["dataset"] for m in meta):
                    per = " / ".join(
                        f"{sum(meta[i]['dataset'] == name for i in idx)} {split}"
                        for split, idx in splits.items())
                    log(f"  {name}: {per}")
    return parts


def prepare_dataset(config, out, *, data_root=None, force=False, log=None):
    """Prepares the slice cache for `config` (a dict or YAML path) into `out`.

    Reuses `out` when its manifest has the same key (same parameters and input files)
    unless `force`. Returns (out path, manifest dict, reused bool).
    """
    if not isinstance(config, dict):
        config = load_config(config)
    resolved = resolve_config(config, data_root)
    files = input_files(resolved)
    key = dataset_key(resolved, files)
    out = pathlib.Path(out)
    # Two `usmr prepare` into one folder take turns: the second finds the first's result.
    with exclusive(out):
        existing = cache.read_manifest(out) if out.is_dir() else None
        if existing and existing.get("key") == key and not force:
            return out, existing, True
        start = time.perf_counter()
        parts = prepare_arrays(resolved, files, log=log)
        manifest = {"key": key, "params": resolved, "version": usmr_tf.__version__,
                    "seconds": round(time.perf_counter() - start, 3),
                    "note": "research images, not for diagnosis"}
        cache.write_prepared(out, parts, manifest)
        return out, cache.read_manifest(out), False
