"""Convert an exported model to TFLite (float32 and dynamic-range int8) and run it with LiteRT.

    .venv/bin/python examples/convert_tflite.py saved_models/NAME [--out tflite_out]

Without a model folder, a tiny random-weight model is exported first (to show the steps).
Prints each file's size and its max |difference| from the SavedModel on a random batch.
The same with the CLI: `usmr convert --to tflite [--quantize dynamic] saved_models/NAME m.tflite`.
Outputs are research images, not diagnoses.
"""

import argparse
import os
import pathlib
import tempfile

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from usmr_tf.export import convert, export_savedmodel  # noqa: E402
from usmr_tf.export.runtimes import SavedModelRunner, TFLiteRunner, random_us_batch  # noqa: E402


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("model", nargs="?", help="saved_models/NAME (default: a tiny demo model)")
    parser.add_argument("--out", default=None, help="output folder (default: a temp folder)")
    args = parser.parse_args()
    out = pathlib.Path(args.out or tempfile.mkdtemp(prefix="usmr_tflite_"))
    model_dir = args.model
    if model_dir is None:
        from usmr_tf.export.testing import build_full_model

        model_dir = export_savedmodel(build_full_model(64, 8, 3), out / "saved_models", "demo").parent

    reference = SavedModelRunner(model_dir)
    x = random_us_batch(4, reference.image_size)
    y = reference(x)
    for quantize in (None, "dynamic"):
        path = convert.to_tflite(model_dir, out / f"model_{quantize or 'float32'}.tflite",
                                 quantize=quantize)
        runner = TFLiteRunner(path)  # ai_edge_litert.interpreter.Interpreter
        error = abs(runner(x) - y).max()
        print(f"{path}: {path.stat().st_size / 1e6:.3f} MB, max |LiteRT - SavedModel| = {error:.2e}")


if __name__ == "__main__":
    main()
