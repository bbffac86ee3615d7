import subprocess
import sys

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
