"""The Markdown table in the shape of the paper's Table 1 (methods as columns, metrics as rows).

Pure formatting: no TensorFlow, no metrics computed here.
"""

import math

# build_model name -> Table 1 column title, in the paper's order
COLUMNS = {
    "ae": "AE",
    "gan": "GAN",
    "cyclegan": "CycleGAN",
    "ours_no_bilatent": "Ours (w/o bi-lat)",
    "ours_no_struct": "Ours (w/o struct.)",
    "ours_no_att": "Ours (w/o att.)",
    "ours": "Ours",
    # beyond the paper (issue 11): the full model with DiffAugment (recipes/ours_da.yaml, the
    # shipped preset's configuration) and with DiffAugment + PatchNCE (recipes/ours_plus.yaml)
    "ours_da": "Ours + DiffAug",
    "ours_plus": "Ours + DiffAug + PatchNCE",
}
REAL = "real"  # the extra column: real MR held out, scored the same way
IDENTITY = "identity"  # the other reference: the input US passed through unchanged
REFERENCES = {IDENTITY: "Identity (US)", REAL: "Real"}

# metric key in `usmr_tf.metrics.evaluation` -> (row title, higher is better, decimals)
ROWS = {
    "diversity": ("Diversity (0 = collapse)", None, 3),
    "deformation": ("Deformation ↓", False, 3),
    "registration_nmi": ("Registration NMI ↑", True, 3),
    "swd": ("SWD (x1e3) ↓", False, 1),
    "structure": ("Structure ↑", True, 3),
    "mae": ("MAE ↓", False, 3),
    "psnr": ("PSNR (dB) ↑", True, 2),
    "ssim": ("SSIM ↑", True, 3),
}
MISSING = "—"


def _finite(value):
    return isinstance(value, (int, float)) and math.isfinite(value)


def _cell(metrics, key, decimals):
    value = metrics.get(key)
    if not _finite(value):
        return MISSING
    text = f"{value:.{decimals}f}"
    if key == "deformation" and _finite(metrics.get("deformation_std")):
        text += f" ± {metrics['deformation_std']:.{decimals}f}"
    return text


def format_table(results):
    """Markdown table of `results` (`{column key: {metric: value}}`, keys of `COLUMNS` or "real").

    Columns keep the paper's order (only those present); rows with no value in any column are
    left out; a metric that does not apply to a column is shown as "—". The best method of each
    row (the reference columns "identity" and "real" excluded) is in bold, as in the paper;
    diversity is read against the references (0 = collapse; real MR ~0.6), never bolded.
    """
    columns = [c for c in [IDENTITY, *COLUMNS, REAL] if c in results]
    unknown = sorted(set(results) - set(columns))
    if unknown:
        raise ValueError(
            f"unknown table column(s) {unknown}; expected {[IDENTITY, *COLUMNS, REAL]}")
    titles = [COLUMNS.get(c) or REFERENCES[c] for c in columns]
    lines = ["| Method | " + " | ".join(titles) + " |",
             "|---|" + "---|" * len(columns)]
    for key, (title, higher, decimals) in ROWS.items():
        cells = [_cell(results[c], key, decimals) for c in columns]
        if all(cell == MISSING for cell in cells):
            continue
        methods = [c for c in columns if c not in REFERENCES and _finite(results[c].get(key))]
        if len(methods) > 1 and higher is not None:  # diversity has no "better" direction
            rounded = {c: round(results[c][key], decimals) for c in methods}
            best = (max if higher else min)(rounded.values())
            cells = [f"**{cell}**" if c in rounded and rounded[c] == best else cell
                     for c, cell in zip(columns, cells)]
        lines.append(f"| {title} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"
