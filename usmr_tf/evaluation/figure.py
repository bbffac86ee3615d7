"""A Fig. 3-style grid: one row per example, one column per stage (input, methods, real MR)."""

import pathlib

import numpy as np
from usmr_tf.atomic import atomic_path

NOTICE = "Research output, not for diagnosis."


def save_grid(path, columns, title, dpi=72, cell=1.6):
    """Writes a PNG grid (temp file, then rename).

    Args:
        path: output `.png`.
        columns: list of `(column title, list of 2D images)`, all lists the same length (rows).
            Images in [-1, 1] are shown on that range; other images (raw scans) autoscale.
        title: figure title; the research-output notice is appended.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = {len(images) for _, images in columns}
    if len(rows) != 1 or 0 in rows:
        raise ValueError(f"every column needs the same number (>= 1) of images, got {rows}")
    n_rows = rows.pop()
    fig, axes = plt.subplots(n_rows, len(columns), squeeze=False, dpi=dpi,
                             figsize=(cell * len(columns), cell * n_rows + 0.5))
    for c, (col_title, images) in enumerate(columns):
        for r, image in enumerate(images):
            image = np.squeeze(np.asarray(image, dtype=np.float32))
            unit = image.min() >= -1.01 and image.max() <= 1.01
            axes[r, c].imshow(image, cmap="gray", vmin=-1 if unit else None,
                              vmax=1 if unit else None, interpolation="nearest")
            axes[r, c].set_axis_off()
        axes[0, c].set_title(col_title, fontsize=7)
    return save_figure(fig, path, title)


def save_figure(fig, path, title, fontsize=8):
    """Titles `fig` (+ the research-output notice), writes it as PNG atomically, closes it."""
    import matplotlib.pyplot as plt

    fig.suptitle(f"{title}\n{NOTICE}", fontsize=fontsize)
    fig.tight_layout()
    try:
        with atomic_path(path) as tmp:
            fig.savefig(tmp, format="png")
    finally:
        plt.close(fig)
    return pathlib.Path(path)
