"""Table 1 reproduction: the seven recipes under one fixed step budget, scored alike.

For each Table 1 column (`recipes/<name>.yaml`) this trains the model with
`usmr_tf.training.trainer.train` under the SAME budget (a number of optimizer steps, not
wall-clock seconds: on a shared CPU a time budget would depend on the other jobs), synthesizes
MR from held-out US with `model.generator`, and scores it with
`usmr_tf.metrics.evaluation.evaluate_synthesis`. The "Real" column scores held-out real MR the
same way. Outputs: a Markdown table in the shape of Table 1, a JSON record and a Fig. 3-style
figure. Research output, not for diagnosis.

Data:
- "phantoms": the recipes' own phantom training data (`data.seed` = the budget's seed); the
  test set is rendered with another seed, so its anatomies are never seen in training. Each
  test US has a paired ground-truth MR (MAE / PSNR / SSIM), and the "Real" column is that
  ground truth. The reference real-MR set (SWD, plane matching) is unpaired phantom MR.
- "real": a `usmr prepare` cache (HC18 US, CC0 fetal MR). Test US = the cache's US `test`
  split; reference real MR = its MR `train` split; "Real" = its MR `test` split (other
  subjects), scored against the same reference (no structure score: no US corresponds).
"""

import dataclasses
import json
import os
import pathlib
import platform
import tempfile
import time

import numpy as np

from usmr_tf.atomic import write_text_atomic
from usmr_tf.errors import ConfigError, DataError
from usmr_tf.evaluation import figure, table

REPO = pathlib.Path(__file__).resolve().parents[2]
RECIPES = REPO / "recipes"
DATA_CONFIG = RECIPES / "data" / "hc18_fetal_mr.yaml"
DATA_KINDS = ("phantoms", "real")
EVAL_SEED_OFFSET = 10_007  # phantom test anatomies come from another RNG stream than training
FIGURE_METHODS = ("cyclegan", "ours", "ours_da")  # the paper's Fig. 3, + ours_da


@dataclasses.dataclass(frozen=True)
class Budget:
    """The training budget every model gets: `steps` optimizer steps of `batch_size` images."""

    steps: int = 600
    batch_size: int = 8
    image_size: int = 64
    base_filters: int = 16
    depth: int = 4
    seed: int = 0
    precision: str | None = None  # training.mixed_precision; None: each recipe's own (float32)

    def __post_init__(self):
        for key in ("steps", "batch_size", "base_filters", "depth"):
            if not isinstance(getattr(self, key), int) or getattr(self, key) < 1:
                raise ConfigError(f"budget: {key} must be an integer >= 1, got "
                                  f"{getattr(self, key)!r}")
        if self.image_size < 16 or self.image_size % 2 ** self.depth:
            raise ConfigError(f"budget: image size {self.image_size} must be >= 16 and a "
                              f"multiple of 2**depth = {2 ** self.depth}")

    def overrides(self):
        """`--set` style overrides applied on top of every recipe (one epoch of `steps`)."""
        return [
            f"model.base_filters={self.base_filters}", f"model.depth={self.depth}",
            f"data.image_size={self.image_size}", f"data.seed={self.seed}",
            "training.epochs=1", f"training.steps_per_epoch={self.steps}",
            "training.validation_steps=1", f"training.batch_size={self.batch_size}",
            f"training.seed={self.seed}",
            "logging.image_every=0", "logging.checkpoint_every=0", "logging.verbose=0",
        ] + ([f"training.mixed_precision={self.precision}"] if self.precision else [])


@dataclasses.dataclass
class EvalSet:
    """What every column is scored on (images `float32 [N, H, W, 1]` in [-1, 1])."""

    kind: str
    us: np.ndarray  # held-out US, the generators' input
    real_mr: np.ndarray  # reference real MR: SWD set and plane-matching candidates
    heldout_mr: np.ndarray  # the "Real" column
    paired_mr: np.ndarray | None = None  # phantoms: ground truth of `us`
    raw_sources: list | None = None  # real: the raw US files of `us` (figure only)
    data_overrides: list = dataclasses.field(default_factory=list)  # recipe `data.*` settings
    description: dict = dataclasses.field(default_factory=dict)


@dataclasses.dataclass
class Reproduction:
    results: dict  # column key -> scalar metrics
    table: str  # the Markdown table only (deterministic under a seed)
    markdown: str  # table + budget, data and timing notes
    record: dict  # everything written to the JSON file
    paths: dict  # "markdown", "json", "figure" -> written files


def _evenly(n_total, n):
    """`min(n, n_total)` indices spread evenly over `range(n_total)`."""
    return np.unique(np.linspace(0, n_total - 1, min(n, n_total)).round().astype(int))


def phantom_eval_set(budget, n_eval=32, n_reference=96, phantom_counts=None):
    """Held-out phantoms (paired ground truth) and an unpaired phantom MR reference set."""
    from usmr_tf.data import unpaired_phantoms

    seed = budget.seed + EVAL_SEED_OFFSET
    us, mr, paired = unpaired_phantoms(n_eval, n_reference, budget.image_size, seed=seed)
    overrides = ["data.source=phantoms"]
    if phantom_counts is not None:
        overrides += [f"data.n_us={phantom_counts[0]}", f"data.n_mr={phantom_counts[1]}"]
    return EvalSet(
        "phantoms", us, mr, paired, paired_mr=paired, data_overrides=overrides,
        description={"test": f"{len(us)} US phantoms (seed {seed}) with paired MR",
                     "reference": f"{len(mr)} unpaired MR phantoms (seed {seed})",
                     "real_column": "the paired ground-truth MR of the test US"})


def prepare_real(image_size, cache_dir, data_config=DATA_CONFIG, data_root=None, log=None):
    """`usmr prepare` of `data_config` at `image_size` into `cache_dir` (reused if up to date)."""
    from usmr_tf.data.prepare import load_config, prepare_dataset

    config = load_config(data_config)
    config["size"] = image_size
    out, _, _ = prepare_dataset(config, cache_dir, data_root=data_root, log=log)
    return out


def real_eval_set(cache_dir, image_size, n_eval=32, n_reference=96):
    """Test US, reference real MR (train split) and held-out real MR (test split) of a cache."""
    from usmr_tf.data import load_prepared

    cache = pathlib.Path(cache_dir)
    us, us_meta = load_prepared(cache, "test", modality="us")
    reference, _ = load_prepared(cache, "train", modality="mr")
    heldout, _ = load_prepared(cache, "test", modality="mr")
    if us.shape[1] != image_size:
        raise DataError(f"cache holds {us.shape[1]}x{us.shape[2]} slices but the budget's image "
                        f"size is {image_size}: prepare it at that size", cache)
    pick, ref_pick, held_pick = (_evenly(len(a), n) for a, n in
                                 ((us, n_eval), (reference, n_reference), (heldout, n_eval)))
    return EvalSet(
        "real", us[pick], reference[ref_pick], heldout[held_pick],
        raw_sources=[us_meta[i].get("source") for i in pick],
        data_overrides=["data.source=prepared", f"data.cache_dir={cache.resolve()}"],
        description={"cache": str(cache.resolve()),
                     "test": f"{len(pick)} of {len(us)} test-split US (HC18)",
                     "reference": f"{len(ref_pick)} of {len(reference)} train-split MR slices",
                     "real_column": f"{len(held_pick)} of {len(heldout)} test-split MR slices "
                                    "(held-out subject)"})


def synthesize(generator, us, batch_size=8):
    """`generator` (US -> MR keras.Model) over `us` in batches -> float32 `[N, H, W, 1]`."""
    out = [np.asarray(generator(us[i:i + batch_size], training=False), dtype=np.float32)
           for i in range(0, len(us), batch_size)]
    return np.clip(np.concatenate(out), -1.0, 1.0)


def train_column(name, budget, eval_set, run_dir, recipes_dir=RECIPES):
    """Trains `recipes_dir/<name>.yaml` under `budget`; returns (synth MR of eval US, info)."""
    import keras

    from usmr_tf.training import trainer
    from usmr_tf.training.recipe import load_recipe

    path = pathlib.Path(recipes_dir) / f"{name}.yaml"
    recipe = load_recipe(path, [*budget.overrides(), *eval_set.data_overrides])
    start = time.perf_counter()
    result = trainer.train(recipe, run_dir)
    seconds = time.perf_counter() - start
    synth = synthesize(result.model.inference_generator, eval_set.us, budget.batch_size)
    logs = {k: float(v[-1]) for k, v in result.history.history.items() if v}
    info = {"recipe": str(path), "train_seconds": round(seconds, 1),
            "generator_params": int(result.model.generator.count_params()), "final_logs": logs}
    del result
    keras.backend.clear_session()
    return synth, info


def score_columns(synth, eval_set, with_deformation=True, registration_size=64, top_k=3,
                  log=None):
    """`{column: metrics}` for every synthesized set in `synth` and the "Real" column."""
    from usmr_tf.metrics.deformation import RegistrationConfig
    from usmr_tf.metrics.evaluation import evaluate_synthesis

    kwargs = dict(with_deformation=with_deformation, top_k=top_k,
                  registration=RegistrationConfig(size=registration_size))
    if eval_set.kind != "real":  # phantoms are not aligned like HC18: no outline check
        kwargs["outline_scale"] = None
    results, matched = {}, {}
    for name, images in synth.items():
        start = time.perf_counter()
        out = evaluate_synthesis(eval_set.us, images, eval_set.real_mr,
                                 paired_mr=eval_set.paired_mr, **kwargs)
        results[name] = out["metrics"]
        matched[name] = out["per_image"].get("matched_mr_index")
        if log:
            log(f"scored {name} in {time.perf_counter() - start:.1f} s")
    if eval_set.paired_mr is not None:  # phantoms: the ground truth against its own US
        real = evaluate_synthesis(eval_set.us, eval_set.heldout_mr, eval_set.real_mr, **kwargs)
    else:  # real data: no US corresponds to a held-out MR slice, so no structure score
        real = evaluate_synthesis(eval_set.heldout_mr, eval_set.heldout_mr, eval_set.real_mr,
                                  **{**kwargs, "outline_scale": None})
        real["metrics"].pop("structure")
    results[table.REAL] = real["metrics"]
    # identity: the US itself as the "synthesized MR" (what doing nothing scores)
    results[table.IDENTITY] = evaluate_synthesis(
        eval_set.us, eval_set.us, eval_set.real_mr, paired_mr=eval_set.paired_mr, **kwargs
    )["metrics"]
    return results, matched


def _figure_columns(eval_set, synth, matched, n_rows=3):
    from usmr_tf.data import load_image

    rows = _evenly(len(eval_set.us), n_rows)
    methods = [m for m in FIGURE_METHODS if m in synth] or [list(synth)[-1]]
    if eval_set.kind == "real":
        columns = [("raw US (HC18)", [load_image(eval_set.raw_sources[i]) for i in rows]),
                   ("pre-processed US", [eval_set.us[i] for i in rows])]
    else:
        columns = [("US phantom (input)", [eval_set.us[i] for i in rows]),
                   ("paired MR (ground truth)", [eval_set.paired_mr[i] for i in rows])]
    columns += [(table.COLUMNS[m], [synth[m][i] for i in rows]) for m in methods]
    match = matched.get(methods[-1])  # the real slice the deformation score registered to
    ref = [eval_set.real_mr[match[i] if match else i % len(eval_set.real_mr)] for i in rows]
    columns.append(("real MR (not corresponding)", ref))
    return columns


def _environment():
    import keras
    import tensorflow as tf

    return {"tensorflow": tf.__version__, "keras": keras.__version__,
            "cpu_count": os.cpu_count(), "machine": platform.machine(),
            "python": platform.python_version()}


def _markdown(eval_set, budget, table_text, record):
    lines = [f"# Table 1 reproduction on {eval_set.kind}", "",
             f"{figure.NOTICE} Budget per model (same for all): {budget.steps} steps x batch "
             f"{budget.batch_size}, {budget.image_size} px, base_filters {budget.base_filters}, "
             f"depth {budget.depth}, seed {budget.seed}. Test: {eval_set.description['test']}; "
             f"reference real MR: {eval_set.description['reference']}; Real: "
             f"{eval_set.description['real_column']}.", "", table_text]
    times = ", ".join(f"{table.COLUMNS[k]} {v['train_seconds']:.0f}"
                      for k, v in record["models"].items())
    lines += [f"Training wall time per model (s): {times}. "
              f"Scoring: {record['score_seconds']:.0f} s.", ""]
    return "\n".join(lines)


def reproduce(data="phantoms", out_dir=".", *, budget=Budget(), models=tuple(table.COLUMNS),
              n_eval=32, n_reference=96, with_deformation=True, registration_size=64,
              prepared=None, data_config=DATA_CONFIG, data_root=None, work_dir=None,
              recipes_dir=RECIPES, phantom_counts=None, deterministic=True, log=None):
    """Trains `models` under `budget`, scores them and writes `out_dir/table1_<data>.{md,json,png}`.

    Args:
        data: "phantoms" or "real".
        prepared: real data: a `usmr prepare` cache at `budget.image_size`; when None, one is
            prepared from `data_config` (`data_root`) under `work_dir`.
        work_dir: training runs (and a prepared cache) go here; a temporary folder by default.
            Never point it inside the repository: it receives data and weights.
        phantom_counts: `(n_us, n_mr)` phantoms to train on instead of the recipes' counts.
        deterministic: `tf.config.experimental.enable_op_determinism()` (process-wide), so the
            same inputs and seed give the same table.

    Returns:
        `Reproduction`. Outputs are written only after everything has been computed.
    """
    log = log or (lambda message: None)
    if data not in DATA_KINDS:
        raise ConfigError(f"data must be one of {DATA_KINDS}, got {data!r}")
    unknown = [m for m in models if m not in table.COLUMNS]
    if unknown or not models:
        raise ConfigError(f"unknown model(s) {unknown}; choose from {list(table.COLUMNS)}")
    models = [m for m in table.COLUMNS if m in models]  # the paper's order
    missing = [m for m in models if not (pathlib.Path(recipes_dir) / f"{m}.yaml").is_file()]
    if missing:
        raise ConfigError(f"{recipes_dir}: no recipe for {missing}")
    out_dir = pathlib.Path(out_dir)
    work = pathlib.Path(work_dir or tempfile.mkdtemp(prefix="usmr_table1_"))
    work.mkdir(parents=True, exist_ok=True)

    if data == "real":
        if prepared is None:
            prepared = prepare_real(budget.image_size, work / f"cache_{budget.image_size}px",
                                    data_config, data_root, log=log)
        eval_set = real_eval_set(prepared, budget.image_size, n_eval, n_reference)
    else:
        eval_set = phantom_eval_set(budget, n_eval, n_reference, phantom_counts)

    if deterministic:
        import tensorflow as tf

        tf.config.experimental.enable_op_determinism()
    synth, info = {}, {}
    for name in models:
        log(f"training {name}: {budget.steps} steps")
        run_dir = pathlib.Path(tempfile.mkdtemp(prefix=f"{name}_", dir=work))
        synth[name], info[name] = train_column(name, budget, eval_set, run_dir, recipes_dir)
        info[name]["run_dir"] = str(run_dir)
        log(f"trained {name} in {info[name]['train_seconds']:.1f} s")
    start = time.perf_counter()
    results, matched = score_columns(synth, eval_set, with_deformation, registration_size,
                                     log=log)
    score_seconds = time.perf_counter() - start

    from usmr_tf.metrics.evaluation import finite_or_none

    table_text = table.format_table(results)
    record = {"data": data, "budget": dataclasses.asdict(budget), "budget_kind": "steps",
              "eval": {**eval_set.description, "n_eval": int(len(eval_set.us)),
                       "n_reference": int(len(eval_set.real_mr)),
                       "deformation": with_deformation, "registration_size": registration_size},
              "results": finite_or_none(results), "models": info,
              "score_seconds": round(score_seconds, 1), "environment": _environment(),
              "note": "research output, not for diagnosis"}
    markdown = _markdown(eval_set, budget, table_text, record)
    columns = _figure_columns(eval_set, synth, matched)

    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {"markdown": out_dir / f"table1_{data}.md", "json": out_dir / f"table1_{data}.json",
             "figure": out_dir / f"table1_{data}.png"}
    figure.save_grid(paths["figure"], columns,
                     f"US -> MR synthesis on {data} ({budget.steps} steps per model)")
    write_text_atomic(paths["json"], json.dumps(record, indent=2) + "\n")
    write_text_atomic(paths["markdown"], markdown)
    return Reproduction(results, table_text, markdown, record, paths)
