"""Convert an exported model to ONNX (tf2onnx) and run it with ONNX Runtime.

    .venv/bin/python examples/convert_onnx.py saved_models/NAME [--out onnx_out]

Without a model folder, a tiny random-weight model is exported first (to show the steps).
The same with the CLI: `usmr convert --to onnx saved_models/NAME model.onnx`.
Outputs are research images, not diagnoses.
"""

import argparse
import os
import pathlib
import tempfile

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import onnxruntime as ort  # noqa: E402

from usmr_tf.export import convert, export_savedmodel  # noqa: E402
from usmr_tf.export.runtimes import SavedModelRunner, random_us_batch  # noqa: E402


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("model", nargs="?", help="saved_models/NAME (default: a tiny demo model)")
    parser.add_argument("--out", default=None, help="output folder (default: a temp folder)")
    args = parser.parse_args()
    out = pathlib.Path(args.out or tempfile.mkdtemp(prefix="usmr_onnx_"))
    model_dir = args.model
    if model_dir is None:
        from usmr_tf.export.testing import build_full_model

        model_dir = export_savedmodel(build_full_model(64, 8, 3), out / "saved_models", "demo").parent

    path = convert.to_onnx(model_dir, out / "model.onnx")  # python -m tf2onnx.convert, opset 17
    # Plain onnxruntime, as a user without usmr_tf would run it:
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    print("inputs:", [(i.name, i.shape) for i in session.get_inputs()],
          "outputs:", [o.name for o in session.get_outputs()])
    reference = SavedModelRunner(model_dir)
    x = random_us_batch(4, reference.image_size)
    (y,) = session.run(["mri_image"], {"us_image": x})
    print(f"{path}: {path.stat().st_size / 1e6:.3f} MB, "
          f"max |ONNX Runtime - SavedModel| = {abs(y - reference(x)).max():.2e}")


if __name__ == "__main__":
    main()
