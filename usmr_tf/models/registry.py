"""`build_model(name, **config)`: one name per Table 1 column.

| name | class | Table 1 column |
|---|---|---|
| `ae` | `AutoEncoder` | AE |
| `gan` | `PlainGAN` | GAN |
| `cyclegan` | `CycleGAN` | CycleGAN |
| `ours_no_bilatent` | `AnatomyAwareSynthesis(use_bilatent=False)` | Ours (w/o bi-lat) |
| `ours_no_struct` | `AnatomyAwareSynthesis(use_structural=False)` | Ours (w/o struct.) |
| `ours_no_att` | `AnatomyAwareSynthesis(use_attention=False)` | Ours (w/o att.) |
| `ours` | `AnatomyAwareSynthesis` | Ours |
"""

import inspect

from usmr_tf.errors import ConfigError
from usmr_tf.models.anatomy_aware import AnatomyAwareSynthesis
from usmr_tf.models.autoencoder import AutoEncoder
from usmr_tf.models.cycle_gan import CycleGAN
from usmr_tf.models.plain_gan import PlainGAN

MODELS = {
    "ae": (AutoEncoder, {}),
    "gan": (PlainGAN, {}),
    "cyclegan": (CycleGAN, {}),
    "ours_no_bilatent": (AnatomyAwareSynthesis, {"use_bilatent": False}),
    "ours_no_struct": (AnatomyAwareSynthesis, {"use_structural": False}),
    "ours_no_att": (AnatomyAwareSynthesis, {"use_attention": False}),
    "ours": (AnatomyAwareSynthesis, {}),
}


def _init_parameters(cls):
    """The `inspect.Parameter`s of every `__init__` from `cls` up to `SynthesisModel`, the
    subclass's first (the Keras base classes below it take `**kwargs`)."""
    for klass in cls.__mro__:
        if "__init__" in vars(klass):
            yield from inspect.signature(klass.__init__).parameters.values()
        if klass.__name__ == "SynthesisModel":
            break


def _accepted_args(cls):
    names = {p.name for p in _init_parameters(cls)} - {"self", "args", "kwargs"}
    return names | {"name", "dtype"}


def model_defaults(name):
    """{argument: default} of model `name`'s constructor with its fixed flags ({} for an
    unknown name): the values a recipe that leaves a model key out trains with."""
    if name not in MODELS:
        return {}
    cls, flags = MODELS[name]
    defaults = {}
    for param in _init_parameters(cls):
        if param.default is not inspect.Parameter.empty:
            defaults.setdefault(param.name, param.default)
    return {**defaults, **flags}


def build_model(name, **config):
    """Builds the model `name` (see `MODELS`); unknown names or options raise `ConfigError`."""
    if name not in MODELS:
        raise ConfigError(f"unknown model {name!r}; choose one of {sorted(MODELS)}")
    cls, flags = MODELS[name]
    unknown = sorted(set(config) - _accepted_args(cls))
    if unknown:
        raise ConfigError(
            f"model {name!r} does not take option(s) {unknown}; it takes "
            f"{sorted(_accepted_args(cls))}"
        )
    clash = {k for k in flags if k in config and config[k] != flags[k]}
    if clash:
        raise ConfigError(f"model {name!r} fixes {sorted(clash)} (use model 'ours' to set them)")
    try:
        return cls(**{**config, **flags})
    except (TypeError, ValueError) as err:
        raise ConfigError(f"model {name!r}: {err}") from err
