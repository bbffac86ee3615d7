"""Options shared by `usmr` subcommands: how a model is named, and progress bars.

Every command that runs an exported model takes ``--model saved_models/NAME[/VERSION]`` or
``--preset NAME`` (`usmr presets`); long steps show a tqdm bar on stderr that ``--quiet``
hides.
"""

MODEL_HELP = "exported model: saved_models/NAME or saved_models/NAME/VERSION"
PRESET_HELP = "a pretrained model by name (see `usmr presets`)"


def add_model_args(parser, required=True):
    """Adds the mutually exclusive ``--model`` / ``--preset`` options."""
    group = parser.add_mutually_exclusive_group(required=required)
    group.add_argument("--model", help=MODEL_HELP)
    group.add_argument("--preset", help=PRESET_HELP)
    return group


def add_quiet_arg(parser):
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


def model_path(args):
    """The model folder named by ``--preset`` (an unknown name is a ConfigError listing the
    known ones) or ``--model``; None when neither was given."""
    if getattr(args, "preset", None):
        from usmr_tf.presets import preset_path

        return preset_path(args.preset)
    return getattr(args, "model", None)


def progress(total, desc, unit="it", quiet=False):
    """A tqdm bar on stderr (also when stderr is a log file: its last state stays there);
    ``quiet`` hides it."""
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, unit=unit, disable=bool(quiet), leave=True)
