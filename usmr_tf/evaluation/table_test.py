import pytest

from usmr_tf.evaluation.table import MISSING, format_table


def _rows(text):
    return [[c.strip() for c in line.strip("|").split("|")] for line in text.splitlines()]


def test_columns_follow_the_paper_and_the_best_method_is_bold():
    results = {  # given out of order on purpose
        "real": {"deformation": 0.0, "swd": 20.0},
        "ours": {"deformation": 0.46, "deformation_std": 0.1, "swd": 50.0, "ssim": 0.5},
        "ae": {"deformation": 0.97, "deformation_std": 0.02, "swd": 40.0, "ssim": 0.7},
    }
    rows = _rows(format_table(results))
    assert rows[0] == ["Method", "AE", "Ours", "Real"]
    by_title = {r[0]: r[1:] for r in rows[2:]}
    assert list(by_title) == ["Deformation ↓", "SWD (x1e3) ↓", "SSIM ↑"]  # empty rows left out
    assert by_title["Deformation ↓"] == ["0.970 ± 0.020", "**0.460 ± 0.100**", "0.000"]
    assert by_title["SWD (x1e3) ↓"] == ["**40.0**", "50.0", "20.0"]  # Real never bold
    assert by_title["SSIM ↑"] == ["**0.700**", "0.500", MISSING]


def test_non_finite_values_show_as_missing_and_unknown_columns_fail():
    rows = _rows(format_table({"gan": {"psnr": float("nan")}, "ours": {"psnr": 12.0}}))
    assert rows[2] == ["PSNR (dB) ↑", MISSING, "12.00"]  # a lone finite value is not bolded
    with pytest.raises(ValueError, match="unknown table column"):
        format_table({"unet": {"psnr": 1.0}})


def test_reference_columns_frame_the_methods_and_diversity_is_never_bold():
    results = {
        "real": {"swd": 40.0, "diversity": 0.6},
        "cyclegan": {"swd": 90.0, "diversity": 0.8},
        "ours": {"swd": 80.0, "diversity": 0.3},
        "identity": {"swd": 230.0, "diversity": 1.0},
    }
    rows = _rows(format_table(results))
    assert rows[0] == ["Method", "Identity (US)", "CycleGAN", "Ours", "Real"]
    by_title = {r[0]: r[1:] for r in rows[2:]}
    assert by_title["Diversity (0 = collapse)"] == ["1.000", "0.800", "0.300", "0.600"]
    assert by_title["SWD (x1e3) ↓"] == ["230.0", "90.0", "**80.0**", "40.0"]  # identity never bold
