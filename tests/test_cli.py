import pathlib
import subprocess
import sys

import pytest

from usmr_tf.cli import main as cli


def test_help_lists_subcommands(capsys):
    parser = cli.build_parser()
    text = parser.format_help()
    for name in cli._available():
        assert name in text


def test_unknown_command_exits_nonzero():
    proc = subprocess.run(
        [sys.executable, "-m", "usmr_tf.cli.main", "no-such-command"],
        capture_output=True, text=True,
    )
    assert proc.returncode != 0
    assert "invalid choice" in proc.stderr


def test_verbose_is_accepted_before_or_after_the_command(monkeypatch):
    from usmr_tf.cli import quiet

    monkeypatch.delenv("USMR_VERBOSE", raising=False)
    monkeypatch.setattr(quiet, "install", lambda verbose=None: calls.append(verbose))
    calls = []
    assert cli.main(["presets", "--verbose"]) == 0
    assert cli.main(["--verbose", "presets"]) == 0
    assert cli.main(["presets"]) == 0
    assert calls == [True, True, None]  # None: quiet unless $USMR_VERBOSE


SAMPLE = pathlib.Path(__file__).resolve().parents[1] / "examples" / "sample_data"


@pytest.mark.parametrize("quiet", [False, True])
def test_prepare_progress_bar_and_quiet(quiet, tmp_path, capsys):
    args = ["prepare", str(SAMPLE / "usmr_sample.yaml"), "--out", str(tmp_path / "data"),
            "--data-root", str(SAMPLE)] + (["--quiet"] if quiet else [])
    assert cli.main(args) == 0
    captured = capsys.readouterr()
    assert "us 5 train / 1 test" in captured.out
    assert "us: 6 files" in captured.err  # the log lines stay either way
    files = 8  # 6 HC18 images + 2 MR volumes
    assert ("prepare: 100%|" in captured.err and f"{files}/{files}" in captured.err) != quiet
    # An up-to-date folder reads no file: no bar at all.
    assert cli.main(args) == 0
    again = capsys.readouterr()
    assert "up to date" in again.out and "prepare:" not in again.err
