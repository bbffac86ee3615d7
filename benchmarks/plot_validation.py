"""Learning curves from `validation.csv` of one or more `usmr train` runs (issue 11).

    .venv/bin/python benchmarks/plot_validation.py RUN [RUN ...] --out curves.png \
        [--labels A B ...] [--identity-swd 234] [--real-diversity 0.7] [--real-swd 41] \
        [--references RUN/validation_references.json] [--offsets 0 3500 ...]

Two panels: output diversity and SWD against optimizer steps, with the reference lines when
given (identity = US passed through; real MR = the floor); one more for the deformation score
and one for the realism test (with its 95 % interval) when a run logged them
(`logging.validate_deformation`, `logging.validate_realism`). `--references` reads the
reference lines from `benchmarks/validation_references.py` (the same metrics on the same
validation set), with a dash-dot line for each exported model it scored (`--model`).
`--offsets` shifts each run's steps (a run started from another's weights with
`training.initial_weights` continues that run's axis). Research output, not for diagnosis.
"""

import argparse
import csv
import json
import pathlib

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def read(run, offset=0):
    with open(pathlib.Path(run) / "validation.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    for r in rows:
        r["step"] = int(r["step"]) + offset
    deformation = [(r["step"], float(r["deformation"])) for r in rows
                   if r.get("deformation") not in (None, "")]
    realism = [(r["step"], float(r["realism"]), float(r["realism_low"]),
                float(r["realism_high"])) for r in rows if r.get("realism") not in (None, "")]
    return ([r["step"] for r in rows], [float(r["diversity"]) for r in rows],
            [float(r["swd"]) for r in rows], deformation, realism)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("runs", nargs="+")
    p.add_argument("--out", required=True)
    p.add_argument("--labels", nargs="*")
    p.add_argument("--title", default="")
    p.add_argument("--identity-swd", type=float)
    p.add_argument("--real-swd", type=float)
    p.add_argument("--real-diversity", type=float)
    p.add_argument("--identity-deformation", type=float)
    p.add_argument("--real-deformation", type=float)
    p.add_argument("--identity-realism", type=float)
    p.add_argument("--real-realism", type=float)
    p.add_argument("--references", help="validation_references.py JSON: every reference line")
    p.add_argument("--floor", type=float, default=0.5, help="best-checkpoint diversity floor")
    p.add_argument("--offsets", nargs="*", type=int, help="steps added to each run's steps")
    args = p.parse_args()
    offsets = args.offsets or [0] * len(args.runs)
    if len(offsets) != len(args.runs):
        p.error("--offsets needs one value per run")
    models = {}  # exported models scored on the same validation set (horizontal lines)
    if args.references:
        refs = json.loads(pathlib.Path(args.references).read_text())
        models = {k: v for k, v in refs.items()
                  if isinstance(v, dict) and k not in ("identity", "real_mr")}
        for row, prefix in (("identity", "identity"), ("real_mr", "real")):
            for metric in ("swd", "deformation", "realism"):
                attr = f"{prefix}_{metric}"
                if getattr(args, attr) is None and metric in refs.get(row, {}):
                    setattr(args, attr, refs[row][metric])
    labels = args.labels or [pathlib.Path(r).name for r in args.runs]
    curves = [read(run, offset) for run, offset in zip(args.runs, offsets)]
    with_def = any(c[3] for c in curves)
    with_real = any(c[4] for c in curves)
    n = 2 + with_def + with_real
    fig, axes = plt.subplots(1, n, figsize=(5 * n, 3.6))
    ax_d, ax_s = axes[0], axes[1]
    ax_r = axes[-1] if with_real else None
    for (steps, div, swd, deform, real), label in zip(curves, labels):
        ax_d.plot(steps, div, marker="o", ms=3, label=label)
        ax_s.plot(steps, swd, marker="o", ms=3, label=label)
        if deform:
            axes[2].plot(*zip(*deform), marker="o", ms=3, label=label)
        if real:
            r_steps, acc, low, high = zip(*real)
            line, = ax_r.plot(r_steps, acc, marker="o", ms=3, label=label)
            ax_r.fill_between(r_steps, low, high, color=line.get_color(), alpha=0.15)
    panels = {"diversity": ax_d, "swd": ax_s}
    if with_def:
        panels["deformation"] = axes[2]
    if with_real:
        panels["realism"] = ax_r
    for i, (name, row) in enumerate(models.items()):
        for metric, ax in panels.items():
            if metric in row:
                ax.axhline(row[metric], color=f"C{i + 3}", ls="-.", lw=1, label=name)
    if with_real:
        if args.identity_realism is not None:
            ax_r.axhline(args.identity_realism, color="grey", ls=":", lw=1, label="identity (US)")
        if args.real_realism is not None:
            ax_r.axhline(args.real_realism, color="green", ls=":", lw=1, label="real MR")
        ax_r.axhline(0.5, color="black", ls="--", lw=0.8, label="chance")
        ax_r.set(xlabel="optimizer step", ylabel="realism test accuracy (0.5 = cannot tell)",
                 title="realism test, 95 % interval (validation US)", ylim=(0.3, 1.02))
        ax_r.legend(fontsize=7)
    if with_def:
        if args.identity_deformation is not None:
            axes[2].axhline(args.identity_deformation, color="grey", ls=":", lw=1,
                            label="identity (US)")
        if args.real_deformation is not None:
            axes[2].axhline(args.real_deformation, color="green", ls=":", lw=1, label="real MR")
        axes[2].set(xlabel="optimizer step", ylabel="deformation score (lower = better)",
                    title="deformation (validation US, 64 px)", ylim=(0, 1.05))
        axes[2].legend(fontsize=7)
    ax_d.axhline(1.0, color="grey", ls=":", lw=1, label="identity (US)")
    ax_d.axhline(args.floor, color="red", ls="--", lw=1, label=f"floor {args.floor}")
    if args.real_diversity is not None:
        ax_d.axhline(args.real_diversity, color="green", ls=":", lw=1, label="real MR")
    if args.identity_swd is not None:
        ax_s.axhline(args.identity_swd, color="grey", ls=":", lw=1, label="identity (US)")
        ax_s.axhline(args.identity_swd / 2, color="red", ls="--", lw=1, label="0.5 x identity")
    if args.real_swd is not None:
        ax_s.axhline(args.real_swd, color="green", ls=":", lw=1, label="real MR")
    ax_d.set(xlabel="optimizer step", ylabel="output diversity (0 = collapse)",
             title="diversity (validation US)")
    ax_s.set(xlabel="optimizer step", ylabel="SWD x1e3 (lower = closer to MR)",
             title="SWD to the training MR domain", yscale="log")
    ax_d.legend(fontsize=7)
    ax_s.legend(fontsize=7)
    if args.title:
        fig.suptitle(args.title + " (research output, not for diagnosis)", fontsize=9)
    fig.tight_layout()
    fig.savefig(args.out, dpi=110)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
