"""`usmr presets`: list the pretrained models in saved_models/ with a line from each card."""


def register(subparsers):
    parser = subparsers.add_parser(
        "presets", help="list the pretrained models in saved_models/",
        description=__doc__ + " Research models, not for diagnosis.")
    parser.set_defaults(func=run)
    return parser


def run(args):
    from usmr_tf.presets import list_presets, preset_summary, presets_dir

    names = list_presets()
    if not names:
        print(f"no presets in {presets_dir()}")
        return 0
    width = max(len(n) for n in names)
    for name in names:
        print(f"{name:<{width}}  {preset_summary(name)}")
    return 0
