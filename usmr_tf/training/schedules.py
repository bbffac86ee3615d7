"""Learning-rate schedules of the training recipes (Keras `LearningRateSchedule`s).

`LinearDecayAfter` is the CycleGAN schedule (Zhu et al. 2017, §7: the rate kept constant for the
first half of training, then decayed linearly to zero): constant until `decay_start` optimizer
steps, then linearly to zero over `decay_steps`. A recipe turns it on with
`training.lr_decay_start` / `training.lr_decay_steps` (off by default: the paper's recipes keep
the rate constant). It is a function of the optimizer's own step counter, which a resumed run
restores, so a killed and resumed run follows the same rates.
"""

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="usmr_tf")
class LinearDecayAfter(keras.optimizers.schedules.LearningRateSchedule):
    """`lr(t) = initial_learning_rate * (1 - clip((t - decay_start) / decay_steps, 0, 1))`."""

    def __init__(self, initial_learning_rate, decay_start, decay_steps, name="LinearDecayAfter"):
        super().__init__()
        if float(initial_learning_rate) <= 0:
            raise ValueError(f"initial_learning_rate must be > 0; got {initial_learning_rate}")
        if int(decay_start) < 0 or int(decay_steps) < 1:
            raise ValueError("decay_start must be >= 0 and decay_steps >= 1; got "
                             f"{decay_start}, {decay_steps}")
        self.initial_learning_rate = float(initial_learning_rate)
        self.decay_start, self.decay_steps = int(decay_start), int(decay_steps)
        self.name = name

    def __call__(self, step):
        step = ops.cast(step, "float32")
        done = ops.clip((step - self.decay_start) / float(self.decay_steps), 0.0, 1.0)
        return self.initial_learning_rate * (1.0 - done)

    def get_config(self):
        return {"initial_learning_rate": self.initial_learning_rate,
                "decay_start": self.decay_start, "decay_steps": self.decay_steps,
                "name": self.name}
