"""Figure from benchmarks/results.json: step time and achieved GFLOP/s per model, float32 vs
mixed_bfloat16, against the float32 and bfloat16 roofs measured in the same run.

    .venv/bin/python benchmarks/plot_results.py [--out docs/figures/performance.png]
"""

import argparse
import pathlib
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import results_io  # noqa: E402

REPO = pathlib.Path(__file__).resolve().parents[1]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(REPO / "docs" / "figures" / "performance.png"))
    args = parser.parse_args(argv)
    train = results_io.load().get("train")
    if not train:
        print("no train section in benchmarks/results.json: run benchmarks/bench_train.py")
        return 1
    rows = train["models"]
    models = list(dict.fromkeys(r["model"] for r in rows))
    precisions = ["float32", "mixed_bfloat16"]
    fig, (ax_t, ax_f) = plt.subplots(1, 2, figsize=(12, 4.2))
    width = 0.38
    for k, prec in enumerate(precisions):
        by = {r["model"]: r for r in rows if r["precision"] == prec}
        xs = [i + (k - 0.5) * width for i in range(len(models))]
        ax_t.bar(xs, [by[m]["step_s"] if m in by else 0 for m in models], width, label=prec)
        ax_f.bar(xs, [by[m]["gflops"] if m in by else 0 for m in models], width, label=prec)
    roofs = train.get("best_roofs") or {k: v["roof_gflops"] for k, v in train["roofs"].items()}
    for (name, value), style in zip(sorted(roofs.items(), reverse=True), ("--", ":")):
        ax_f.axhline(value, color="k", linestyle=style, label=f"{name} roof {value:.0f}")
    for ax, title in ((ax_t, "train step (s, best of repeats)"),
                      (ax_f, "achieved GFLOP/s (analytic FLOPs / step)")):
        ax.set_xticks(range(len(models)))
        ax.set_xticklabels(models, rotation=15)
        ax.set_title(title)
        ax.legend(fontsize=8)
    ax_t.set_yscale("log")
    fig.suptitle(f"{train['size']}x{train['size']}, batch {train['batch']}, "
                 f"{train['cpu_count']} CPU cores; {train['written']}", fontsize=9)
    fig.tight_layout()
    out = pathlib.Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
