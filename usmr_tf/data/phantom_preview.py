"""Preview grid and generation speed of the paired phantoms.

    python -m usmr_tf.data.phantom_preview --figure docs/figures/phantoms.png --speed 2000

writes a PNG grid of US | MR pairs (and their label map) and prints how many
128 x 128 slices per second `generate_phantoms` makes. Research images, not
diagnoses.
"""

import argparse
import os
import pathlib
import time

import numpy as np

from usmr_tf.atomic import atomic_path
from usmr_tf.data.phantoms import LABELS, generate_phantoms


def save_preview(path, n=4, size=128, seed=0, dpi=80):
    """Writes a PNG grid, one row per phantom: US | MR (paired) | label map."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    batch = generate_phantoms(n, size=size, seed=seed)
    columns = (("US", batch["us"][..., 0], "gray", (-1, 1)),
               ("MR (paired)", batch["mr"][..., 0], "gray", (-1, 1)),
               ("labels", batch["labels"], "tab10", (0, max(LABELS.values()))))
    fig, axes = plt.subplots(n, len(columns), figsize=(1.8 * len(columns), 1.8 * n + 0.3),
                             squeeze=False)
    for c, (title, images, cmap, (low, high)) in enumerate(columns):
        for i in range(n):
            ax = axes[i, c]
            ax.imshow(images[i], cmap=cmap, vmin=low, vmax=high, interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
        axes[0, c].set_title(title, fontsize=9)
    fig.suptitle("synthetic phantoms: research images, not diagnoses", fontsize=8)
    fig.tight_layout(pad=0.3, rect=(0, 0, 1, 0.97))
    try:
        with atomic_path(path) as tmp:
            fig.savefig(tmp, dpi=dpi)
    finally:
        plt.close(fig)
        tmp.unlink(missing_ok=True)
    return path


def measure_speed(n, size=128, repeats=3):
    """Best-of-`repeats` (wall, CPU) seconds of `generate_phantoms(n, size)`.

    The CPU time of this process is the better figure on a shared machine: other
    processes inflate the wall time but not it (much).
    """
    generate_phantoms(8, size=size)  # warm-up
    wall = cpu = np.inf
    for seed in range(repeats):
        start, start_cpu = time.perf_counter(), time.process_time()
        generate_phantoms(n, size=size, seed=seed)
        wall = min(wall, time.perf_counter() - start)
        cpu = min(cpu, time.process_time() - start_cpu)
    return wall, cpu


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--figure", type=pathlib.Path, help="PNG preview grid to write")
    parser.add_argument("--n", type=int, default=4, help="phantoms in the preview grid")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--speed", type=int, default=0, metavar="N",
                        help="time the generation of N slices (best of 3)")
    parser.add_argument("--size", type=int, default=128)
    args = parser.parse_args(argv)
    if args.figure:
        path = save_preview(args.figure, n=args.n, size=args.size, seed=args.seed)
        print(f"wrote {path} ({path.stat().st_size // 1024} KiB)")
    if args.speed:
        wall, cpu = measure_speed(args.speed, size=args.size)
        load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
        print(f"generate_phantoms({args.speed}, size={args.size}), best of 3: "
              f"wall {wall:.2f} s = {args.speed / wall:.0f} slices/s, "
              f"CPU {cpu:.2f} s = {args.speed / cpu:.0f} slices/s per core "
              f"({os.cpu_count()} cores, load average {load:.1f})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
