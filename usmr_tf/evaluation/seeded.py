"""Table 1 with error bars (issue 16): every column, several seeds, both data sets, resumable.

One **cell** = one model (a Table 1 recipe) trained under the budget with one seed, its
generator run on the data set's fixed test US and scored. A cell is the unit of work and of
resumption: the record (`table1.json`) is rewritten after every finished cell, so a run that
is stopped (or a session that ends) goes on from the cells it has; a record written under
another budget or test set is refused, never mixed. The record holds every value (per-image
scores included), so the summary, the claims and the figure can be rebuilt from it alone.

Data sets (the test set is the same for every seed, so scores pair by image):
- "phantoms": `reproduce.phantom_eval_set` at the budget's size with seed 0's test stream
  (paired ground truth: MAE / PSNR / SSIM per image) + the unpaired scores against unpaired
  phantom MR. Training phantoms are drawn with each cell's seed.
- "real": a `usmr prepare` cache of the current preset data recipe (`recipes/data/
  preset_v3.yaml`): test US = its US test split; training = its train split; scored against
  its MR test split (deformation, SWD, realism test, diversity, structure) and against its
  left-out MR source (`heldout`: SWD and realism test as `swd_left_out`, `realism_left_out`).

Reference columns, scored once (they do not depend on a training seed): `identity` (the test
US passed through) and `real` (phantoms: the paired ground truth; real data: train-split MR
slices of other subjects, as many as the test US). Research output, not for diagnosis.
"""

import contextlib
import dataclasses
import json
import math
import pathlib
import tempfile
import time

import numpy as np

from usmr_tf.atomic import write_text_atomic
from usmr_tf.errors import ConfigError, DataError
from usmr_tf.evaluation import claims as claims_lib
from usmr_tf.evaluation import reproduce as rp
from usmr_tf.evaluation import figure, table
from usmr_tf.evaluation.figure import NOTICE

RECORD_VERSION = 1
# metric -> (row title, higher is better or None, decimals): the single-seed table's rows
# (table.ROWS) plus the realism test and the left-out MR source, in the order of the tables
_EXTRA_ROWS = {
    "realism": ("Realism test ↓ (0.5 = cannot tell)", False, 2),
    "swd_left_out": ("SWD, left-out MR source ↓", False, 1),
    "realism_left_out": ("Realism test, left-out MR source ↓", False, 2),
}
ROWS = {key: table.ROWS.get(key) or _EXTRA_ROWS[key]
        for key in ("deformation", "swd", "realism", "swd_left_out", "realism_left_out",
                    "diversity", "structure", "mae", "psnr", "ssim")}
FIGURE_METRICS = {"phantoms": ("deformation", "swd", "realism", "psnr", "ssim"),
                  "real": ("deformation", "swd", "realism", "swd_left_out", "realism_left_out",
                           "diversity")}
CLAIM_METRICS = {"phantoms": ("deformation", "mae", "psnr", "ssim", "swd", "realism"),
                 "real": ("deformation", "swd", "realism", "swd_left_out", "realism_left_out")}


@dataclasses.dataclass(frozen=True)
class Spec:
    """What the whole table is run under; a record is only resumed under the same spec."""

    budget: rp.Budget = rp.Budget()
    seeds: tuple = (0, 1, 2)
    models: tuple = tuple(m for m in table.COLUMNS if m != "ours_plus")
    n_eval: int = 64
    n_reference: int = 96
    registration_size: int = 64
    phantom_counts: tuple | None = None  # phantoms: (n_us, n_mr) to train on (tests); recipes'
    realism_epochs: int = 30  # the realism test's protocol (RealismConfig); fewer only in tests

    def __post_init__(self):
        if not self.seeds or len(set(self.seeds)) != len(self.seeds):
            raise ConfigError(f"seeds must be distinct and at least one, got {self.seeds}")
        unknown = [m for m in self.models if m not in table.COLUMNS]
        if unknown or not self.models:
            raise ConfigError(f"unknown model(s) {unknown}; choose from {list(table.COLUMNS)}")
        if self.n_eval < 5:
            raise ConfigError(f"n_eval must be >= 5 (the realism test's folds), got {self.n_eval}")

    def as_dict(self):
        out = dataclasses.asdict(self)
        out["budget"].pop("seed")  # each cell's seed is its own
        out["seeds"], out["models"] = list(self.seeds), list(self.models)
        if self.phantom_counts is not None:
            out["phantom_counts"] = list(self.phantom_counts)
        return out


# --- the test sets ---------------------------------------------------------------------------

@dataclasses.dataclass
class SeededEvalSet:
    kind: str
    us: np.ndarray  # test US, [N, H, W, 1]
    reference: np.ndarray  # MR the scores are read against (SWD, realism, plane matching)
    real: np.ndarray  # the "real" column's images
    paired: np.ndarray | None = None  # phantoms: ground truth of `us`
    left_out: np.ndarray | None = None  # real: the left-out MR source
    data_overrides: list = dataclasses.field(default_factory=list)
    description: dict = dataclasses.field(default_factory=dict)


def phantom_set(spec):
    base = rp.phantom_eval_set(dataclasses.replace(spec.budget, seed=0), spec.n_eval,
                               spec.n_reference, spec.phantom_counts)
    return SeededEvalSet("phantoms", base.us, base.real_mr, base.paired_mr,
                         paired=base.paired_mr, data_overrides=base.data_overrides,
                         description=base.description)


def real_set(cache_dir, spec):
    """The test split of a prepared cache with a `heldout` (left-out) MR source."""
    from usmr_tf.data import load_prepared

    cache = pathlib.Path(cache_dir)
    us, _ = load_prepared(cache, "test", modality="us")
    mr_test, _ = load_prepared(cache, "test", modality="mr")
    mr_train, _ = load_prepared(cache, "train", modality="mr")
    left_out, _ = load_prepared(cache, "heldout", modality="mr")
    size = spec.budget.image_size
    if us.shape[1] != size:
        raise DataError(f"cache holds {us.shape[1]}x{us.shape[2]} slices but the budget's image "
                        f"size is {size}: prepare it at that size", cache)
    pick = rp._evenly(len(us), spec.n_eval)
    real_pick = rp._evenly(len(mr_train), len(pick))
    return SeededEvalSet(
        "real", us[pick], mr_test, mr_train[real_pick], left_out=left_out,
        data_overrides=["data.source=prepared", f"data.cache_dir={cache.resolve()}"],
        description={"cache": str(cache.resolve()),
                     "test": f"{len(pick)} of {len(us)} test-split US",
                     "reference": f"{len(mr_test)} test-split MR slices (subjects not trained on)",
                     "left_out": f"{len(left_out)} slices of the left-out MR source",
                     "real_column": f"{len(real_pick)} train-split MR slices (other subjects)"})


# --- scoring ---------------------------------------------------------------------------------

def _round(values, digits=5):
    return [None if v is None or not math.isfinite(v) else round(float(v), digits)
            for v in np.asarray(values, dtype=np.float64).ravel()]


def score(eval_set, images, spec, structure=True):
    """`{"metrics", "per_image"}` of `images` (one per test US, or the real column's set)."""
    from usmr_tf.metrics import image_metrics
    from usmr_tf.metrics.deformation import RegistrationConfig
    from usmr_tf.metrics.evaluation import evaluate_synthesis, finite_or_none
    from usmr_tf.metrics.outline import DEFAULT_SCALE
    from usmr_tf.metrics.realism import RealismConfig

    us = eval_set.us[:len(images)]
    # the outline check needs US aligned like HC18 and an MR made from them: not phantoms, not
    # the real column
    aligned = eval_set.paired is None and structure
    out = evaluate_synthesis(us, images, eval_set.reference, paired_mr=None,
                             registration=RegistrationConfig(size=spec.registration_size),
                             realism_config=RealismConfig(epochs=spec.realism_epochs),
                             outline_scale=DEFAULT_SCALE if aligned else None)
    metrics = {k: v for k, v in out["metrics"].items() if k != "swd_levels"}
    per_image = {k: _round(out["per_image"][k]) for k in ("deformation", "structure")}
    if not structure:
        metrics.pop("structure", None)
        per_image.pop("structure")
    if eval_set.paired is not None and len(images) == len(eval_set.paired):
        paired = eval_set.paired
        for name, fn in (("mae", image_metrics.mae_per_image),
                         ("psnr", image_metrics.psnr_per_image),
                         ("ssim", image_metrics.ssim_per_image)):
            values = np.asarray(fn(images, paired), dtype=np.float64)
            metrics[name], per_image[name] = float(values.mean()), _round(values)
    if eval_set.left_out is not None:
        left = evaluate_synthesis(us, images, eval_set.left_out, with_deformation=False,
                                  realism_config=RealismConfig(epochs=spec.realism_epochs),
                                  outline_scale=None)
        left = left["metrics"]
        metrics["swd_left_out"] = left["swd"]
        metrics["realism_left_out"] = left["realism"]
        metrics["realism_left_out_ci"] = left["realism_ci"]
    return {"metrics": finite_or_none(metrics), "per_image": per_image}


def score_references(eval_set, spec):
    """The identity and real columns (seed-free)."""
    refs = {table.IDENTITY: score(eval_set, eval_set.us, spec)}
    if eval_set.paired is not None:  # the ground truth itself: MAE 0 / PSNR inf say nothing
        real = score(dataclasses.replace(eval_set, paired=None), eval_set.real, spec)
    else:  # other subjects' MR: no US corresponds, no structure score
        real = score(eval_set, eval_set.real, spec, structure=False)
    refs[table.REAL] = real
    return refs


# --- the record ------------------------------------------------------------------------------

def new_record(spec):
    return {"version": RECORD_VERSION, "spec": spec.as_dict(), "eval": {}, "references": {},
            "cells": {}, "note": "research output, not for diagnosis"}


def load_record(path, spec):
    """The record at `path` if it was written under `spec` (else a ConfigError), or a new one."""
    path = pathlib.Path(path)
    if not path.is_file():
        return new_record(spec)
    try:
        record = json.loads(path.read_text())
    except (OSError, ValueError) as err:
        raise DataError(f"cannot read the Table 1 record: {err}", path) from err
    if record.get("version") != RECORD_VERSION or record.get("spec") != spec.as_dict():
        raise ConfigError(f"{path}: written under another budget, seeds, models or test set "
                          f"({record.get('spec')}); give another --record or remove it")
    return record


@contextlib.contextmanager
def _locked(record_path):
    """Holds an exclusive lock on `record_path` + ".lock" (workers share one record)."""
    import fcntl

    lock = pathlib.Path(str(record_path) + ".lock")
    lock.parent.mkdir(parents=True, exist_ok=True)
    with open(lock, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _update(record_path, spec, change):
    """Re-reads the record under the lock, applies `change(record)`, writes it atomically."""
    with _locked(record_path):
        record = load_record(record_path, spec)
        change(record)
        write_text_atomic(record_path, json.dumps(record) + "\n")
    return record


def todo_cells(record, spec, data):
    """The missing cells, seed by seed (each finished seed completes a row of every table)."""
    return [(d, m, s) for s in spec.seeds for d in data for m in spec.models
            if str(s) not in record["cells"].get(d, {}).get(m, {})]


def run(record_path, spec, data=("phantoms", "real"), real_cache=None, work_dir=None,
        max_cells=None, workers=1, worker=0, recipes_dir=rp.RECIPES, deterministic=True,
        log=None, results_path=None):
    """Trains and scores the missing cells of `spec` on `data`, writing `record_path` after
    each; then the summary, claims, Markdown and figure next to it (and, with
    `results_path`, the generated blocks of that page: `finish`).

    `workers`, `worker`: several processes may share one record (each takes every
    `workers`-th missing cell from `worker` on; updates are made under a file lock, and
    worker 0 scores the reference columns). `max_cells`: at most that many new cells in this
    call. `real_cache`: a prepared cache with a held-out MR source (needed for "real").
    `work_dir`: training runs go there (a temporary folder by default; never the
    repository); each run's folder is removed once its cell is scored. Returns the record.
    """
    import shutil

    log = log or (lambda message: None)
    unknown = [d for d in data if d not in rp.DATA_KINDS]
    if unknown or not data:
        raise ConfigError(f"data must be among {rp.DATA_KINDS}, got {list(data)}")
    if "real" in data and real_cache is None:
        raise ConfigError("real data needs a prepared cache (--prepared; recipes/data/"
                          "preset_v3.yaml at the budget's size)")
    if not 0 <= worker < workers:
        raise ConfigError(f"worker must be in [0, {workers}), got {worker}")
    missing = [m for m in spec.models if not (pathlib.Path(recipes_dir) / f"{m}.yaml").is_file()]
    if missing:
        raise ConfigError(f"{recipes_dir}: no recipe for {missing}")
    record_path = pathlib.Path(record_path)
    load_record(record_path, spec)  # refuses another spec's record before any work
    work = pathlib.Path(work_dir or tempfile.mkdtemp(prefix="usmr_table1_seeds_"))
    work.mkdir(parents=True, exist_ok=True)
    if deterministic:
        import tensorflow as tf

        tf.config.experimental.enable_op_determinism()
    eval_sets = {d: phantom_set(spec) if d == "phantoms" else real_set(real_cache, spec)
                 for d in data}

    def describe(record):
        for kind, eval_set in eval_sets.items():
            known = record["eval"].get(kind)
            described = {**eval_set.description, "n_test": int(len(eval_set.us))}
            described.pop("cache", None)  # the same cache may sit elsewhere in another session
            if known is not None and known != described:
                raise ConfigError(f"{record_path}: its {kind} test set was {known}, this one "
                                  f"is {described}; give another --record")
            record["eval"][kind] = described

    record = _update(record_path, spec, describe)
    todo = todo_cells(record, spec, data)[worker::workers]
    if max_cells is not None:
        todo = todo[:max_cells]
    log(f"{len(todo)} cell(s) to run")
    if worker == 0:
        for kind, eval_set in eval_sets.items():
            if kind not in record["references"]:
                start = time.perf_counter()
                refs = score_references(eval_set, spec)
                _update(record_path, spec, lambda r, k=kind, v=refs: r["references"].update({k: v}))
                log(f"scored the {kind} reference columns in {time.perf_counter() - start:.0f} s")
    done_times = []
    for i, (kind, model, seed) in enumerate(todo):
        eval_set = eval_sets[kind]
        budget = dataclasses.replace(spec.budget, seed=seed)
        data_set = rp.EvalSet(kind, eval_set.us, eval_set.reference, eval_set.real,
                              data_overrides=eval_set.data_overrides)
        run_dir = pathlib.Path(tempfile.mkdtemp(prefix=f"{kind}_{model}_s{seed}_", dir=work))
        start = time.perf_counter()
        synth, info = rp.train_column(model, budget, data_set, run_dir, recipes_dir)
        trained = time.perf_counter() - start
        cell = score(eval_set, synth, spec)
        cell.update(train_seconds=round(trained, 1),
                    score_seconds=round(time.perf_counter() - start - trained, 1),
                    final_logs=info["final_logs"], generator_params=info["generator_params"])

        def put(r, kind=kind, model=model, seed=seed, cell=cell):
            r["cells"].setdefault(kind, {}).setdefault(model, {})[str(seed)] = cell

        _update(record_path, spec, put)
        shutil.rmtree(run_dir, ignore_errors=True)
        done_times.append(time.perf_counter() - start)
        left = (len(todo) - i - 1) * sum(done_times) / len(done_times)
        log(f"[{i + 1}/{len(todo)}] {kind} {model} seed {seed}: trained {trained:.0f} s, "
            f"scored {cell['score_seconds']:.0f} s; ~{left / 60:.0f} min left for this worker")
    with _locked(record_path):
        return finish(load_record(record_path, spec), record_path, results_path=results_path)


# --- summary, claims, outputs ----------------------------------------------------------------

def summarize(record):
    """`{data: {column: {metric: {"mean", "sd", "n"}}}}`: sd over seeds (ddof 1; 0 for the
    seed-free reference columns, None with one seed)."""
    out = {}
    for kind in record["eval"]:
        columns = {}
        for name, ref in record["references"].get(kind, {}).items():
            columns[name] = {k: {"mean": v, "sd": 0.0, "n": 1}
                             for k, v in ref["metrics"].items() if k in ROWS and v is not None}
        for model in table.COLUMNS:  # the paper's order
            cells = record["cells"].get(kind, {}).get(model, {})
            if not cells:
                continue
            metrics = {}
            for key in ROWS:
                values = [c["metrics"].get(key) for c in cells.values()]
                values = [v for v in values if v is not None]
                if values:
                    metrics[key] = {"mean": float(np.mean(values)),
                                    "sd": float(np.std(values, ddof=1)) if len(values) > 1
                                    else None, "n": len(values)}
            columns[model] = metrics
        out[kind] = columns
    return out


def judge(record, n_boot=2000):
    """The paper's claims (and the DiffAugment one) on every data set: `claims.judge_claims`."""
    out = {}
    for kind in record["eval"]:
        cells = {m: {int(s): c for s, c in seeds.items()}
                 for m, seeds in record["cells"].get(kind, {}).items()}
        out[kind] = claims_lib.judge_claims(cells, CLAIM_METRICS[kind], n_boot=n_boot)
    return out


def _fmt(entry, decimals):
    if entry is None:
        return table.MISSING
    text = f"{entry['mean']:.{decimals}f}"
    if entry["sd"] is not None and entry["n"] > 1:
        text += f" ± {entry['sd']:.{decimals}f}"
    return text


def format_summary(summary_kind, seeds_needed):
    """Markdown table (mean ± sd over seeds) of one data set; `n/k` marks incomplete columns."""
    columns = [c for c in [table.IDENTITY, *table.COLUMNS, table.REAL] if c in summary_kind]
    titles = [table.COLUMNS.get(c) or table.REFERENCES[c] for c in columns]
    lines = ["| Metric | " + " | ".join(titles) + " |", "|---|" + "---|" * len(columns)]
    for key, (title, _, decimals) in ROWS.items():
        cells = [_fmt(summary_kind[c].get(key), decimals) for c in columns]
        if all(c == table.MISSING for c in cells):
            continue
        lines.append(f"| {title} | " + " | ".join(cells) + " |")
    seeds = [str(max((e["n"] for e in summary_kind[c].values()), default=0))
             if c not in table.REFERENCES else "—" for c in columns]
    lines.append("| Seeds | " + " | ".join(
        s if s in ("—", str(seeds_needed)) else f"{s}/{seeds_needed}" for s in seeds) + " |")
    paper = claims_lib.PAPER_TABLE1["deformation"]
    lines.append("| *Paper: deformation* | " + " | ".join(
        f"*{paper[c]:.2f}*" if c in paper else "" for c in columns) + " |")
    return "\n".join(lines) + "\n"


def format_claims(claims_kind):
    lines = ["| Claim | " + " | ".join(["metric: Ours - other [95 % interval] → verdict"]) + " |",
             "|---|---|"]
    for claim in claims_kind.values():
        parts = []
        for metric, c in claim["by_metric"].items():
            decimals = ROWS[metric][2] + 1
            low, high = c["ci"]
            parts.append(f"{metric} {c['difference']:+.{decimals}f} [{low:+.{decimals}f}, "
                         f"{high:+.{decimals}f}] → **{c['verdict']}**")
        lines.append(f"| {claim['text']} (seeds {len(claim['seeds'])}) | "
                     + "<br>".join(parts) + " |")
    return "\n".join(lines) + "\n"


VERDICT_MARKS = {"holds": "holds", "does not hold": "**does not hold**", "within noise": "~"}


def format_verdicts(claims_kind):
    """The claims at a glance: one row per claim, one column per metric, each cell the verdict
    and Ours - other (`~` = within noise); the intervals are in `format_claims`' table."""
    if not claims_kind:
        return ""
    metrics = list(next(iter(claims_kind.values()))["by_metric"])
    lines = ["| Claim | " + " | ".join(ROWS[m][0] for m in metrics) + " |",
             "|---|" + "---|" * len(metrics)]
    for claim in claims_kind.values():
        cells = []
        for metric in metrics:
            c = claim["by_metric"].get(metric)
            if c is None:
                cells.append("")
                continue
            decimals = ROWS[metric][2]
            cells.append(f"{VERDICT_MARKS[c['verdict']]} ({c['difference']:+.{decimals}f})")
        lines.append(f"| {claim['text']} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def format_markdown(record, summary, judged):
    spec = record["spec"]
    b = spec["budget"]
    lines = ["# Table 1 with seeds", "",
             f"{NOTICE} Budget per model: {b['steps']} steps x batch {b['batch_size']}, "
             f"{b['image_size']} px, base_filters {b['base_filters']}, depth {b['depth']}, "
             f"precision {b['precision'] or 'float32'}; seeds {spec['seeds']}; mean ± sd over "
             "seeds (reference columns are seed-free).", ""]
    for kind in summary:
        desc = record["eval"][kind]
        lines += [f"## {kind}", "", "Test: " + "; ".join(f"{k}: {v}" for k, v in desc.items()),
                  "", format_summary(summary[kind], len(spec["seeds"])), "",
                  "Claims at a glance (verdict, Ours - other; ~ = within noise):", "",
                  format_verdicts(judged.get(kind, {})),
                  format_claims(judged.get(kind, {})), ""]
    return "\n".join(lines)


def save_figure(path, record, summary):
    """Metric per column with sd error bars, one row of panels per data set."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    kinds = [k for k in summary if summary[k]]
    n_cols = max(len(FIGURE_METRICS[k]) for k in kinds)
    fig, axes = plt.subplots(len(kinds), n_cols, squeeze=False, dpi=80,
                             figsize=(2.6 * n_cols, 2.9 * len(kinds)))
    for r, kind in enumerate(kinds):
        models = [m for m in table.COLUMNS if m in summary[kind]]
        for c in range(n_cols):
            ax = axes[r, c]
            if c >= len(FIGURE_METRICS[kind]):
                ax.set_axis_off()
                continue
            key = FIGURE_METRICS[kind][c]
            xs, ys, es = [], [], []
            for i, m in enumerate(models):
                entry = summary[kind][m].get(key)
                if entry is not None:
                    xs.append(i)
                    ys.append(entry["mean"])
                    es.append(entry["sd"] or 0.0)
            ax.errorbar(xs, ys, yerr=es, fmt="o", capsize=3, color="k", markersize=4)
            for ref, style in ((table.IDENTITY, "r--"), (table.REAL, "g:")):
                entry = summary[kind].get(ref, {}).get(key)
                if entry is not None:
                    ax.axhline(entry["mean"], color=style[0], linestyle=style[1:],
                               label=table.REFERENCES[ref])
            ax.set_xticks(range(len(models)))
            ax.set_xticklabels([table.COLUMNS[m] for m in models], rotation=70, fontsize=6)
            ax.set_title(f"{kind}: {ROWS[key][0]}", fontsize=7)
            ax.tick_params(axis="y", labelsize=6)
            if r == 0 and c == 0:
                ax.legend(fontsize=5)
    b = record["spec"]["budget"]
    return figure.save_figure(fig, path, f"Table 1, mean ± sd over seeds "
                              f"{record['spec']['seeds']} ({b['steps']} steps, "
                              f"{b['image_size']} px)")


# Short metric names for the generated prose of docs/results.md.
PROSE_NAMES = {"deformation": "deformation", "mae": "MAE", "psnr": "PSNR", "ssim": "SSIM",
               "swd": "SWD", "realism": "realism", "swd_left_out": "SWD left-out",
               "realism_left_out": "realism left-out"}


def format_prose(judged):
    """One bullet per claim: per data set, the metrics grouped by verdict (holds, does not
    hold, within noise), each with Ours - other to 3 significant digits."""
    lines = ["Generated from the record (Ours - other; a difference is the claimed-better model "
             "minus the other):", ""]
    texts = {}
    for kind, claims in judged.items():
        for key, claim in claims.items():
            texts.setdefault(key, [claim["text"], []])[1].append((kind, claim))
    for text, per_kind in texts.values():
        parts = []
        for kind, claim in per_kind:
            groups = []
            for verdict in ("holds", "does not hold", "within noise"):
                items = [f"{PROSE_NAMES.get(m, m)} {c['difference']:+.3g}"
                         for m, c in claim["by_metric"].items() if c["verdict"] == verdict]
                if items:
                    groups.append(f"{verdict} on " + ", ".join(items))
            parts.append(f"{kind} ({len(claim['seeds'])} seeds): " + "; ".join(groups) + ".")
        lines.append(f"- **{text}.** " + " ".join(parts))
    return "\n".join(lines) + "\n"


def format_cost(record):
    """The measured cost line: median training time per model, total worker-hours."""
    times, train, scoring, n = {}, 0.0, 0.0, 0
    for models in record["cells"].values():
        for model, seeds in models.items():
            for cell in seeds.values():
                times.setdefault(model, []).append(cell.get("train_seconds", 0.0))
                train += cell.get("train_seconds", 0.0)
                scoring += cell.get("score_seconds", 0.0)
                n += 1
    medians = ", ".join(f"{m} {np.median(t):.0f} s" for m, t in times.items())
    return ("Measured cost, from the record (`train_seconds` / `score_seconds` of every cell): "
            f"median training time per cell {medians}; all {n} cells together "
            f"{train / 3600:.2f} worker-hours of training + {scoring / 3600:.2f} of scoring.\n")


def results_blocks(record, summary, judged):
    """{block name: Markdown} for the `<!-- table1:NAME -->` blocks of docs/results.md:
    one per data set (test description, mean ± sd table, claims at a glance), `prose`, `cost`."""
    blocks = {}
    for kind in summary:
        desc = record["eval"][kind]
        blocks[kind] = "\n".join([
            "Test: " + "; ".join(f"{k}: {v}" for k, v in desc.items()), "",
            format_summary(summary[kind], len(record["spec"]["seeds"])),
            "Claims at a glance (verdict, Ours - other; ~ = within noise; the 95 % intervals "
            "are in `docs/table1.md`):", "", format_verdicts(judged.get(kind, {}))])
    blocks["prose"] = format_prose(judged)
    blocks["cost"] = format_cost(record)
    return blocks


def fill_results(text, blocks):
    """``text`` with each ``<!-- table1:NAME -->`` ... ``<!-- /table1:NAME -->`` block's body
    replaced by ``blocks[NAME]``; blocks the text does not have are skipped, markers without
    their closing marker are an error (the text is not changed)."""
    for name, body in blocks.items():
        start, end = f"<!-- table1:{name} -->", f"<!-- /table1:{name} -->"
        i = text.find(start)
        if i < 0:
            continue
        j = text.find(end, i)
        if j < 0:
            raise ValueError(f"{start} has no closing {end}")
        text = text[:i + len(start)] + "\n" + body.rstrip("\n") + "\n" + text[j:]
    return text


def finish(record, record_path, figure_path=None, results_path=None):
    """Adds the summary and claims to the record and writes it, the Markdown and the figure;
    with ``results_path`` (docs/results.md) also fills that document's generated blocks."""
    record_path = pathlib.Path(record_path)
    summary = summarize(record)
    judged = judge(record)
    record["summary"], record["claims"] = summary, judged
    write_text_atomic(record_path, json.dumps(record) + "\n")
    write_text_atomic(record_path.with_suffix(".md"), format_markdown(record, summary, judged))
    if any(summary.values()):
        save_figure(figure_path or record_path.with_suffix(".png"), record, summary)
    if results_path is not None:
        results_path = pathlib.Path(results_path)
        text = results_path.read_text()
        write_text_atomic(results_path, fill_results(text, results_blocks(record, summary,
                                                                          judged)))
    return record
