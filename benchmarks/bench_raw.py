"""Raw-scan speed: locate one 800x540 HC18 image and synthesize it, in process.

    python benchmarks/bench_raw.py [--runs 10] [--locator saved_models/fetal_head_locator]
        [--synthesis saved_models/fetal_hc18_v2] [--image examples/sample_data/.../302_HC.png]

Times (median over ``--runs`` after a warm-up, seconds per image): the locator
(``locate_image``: every pass of the export -- letterbox, zoom and, from version 2, the
refinement pass -- with test-time flip + ellipse fits), the alignment
(``spatial_normalize``), the synthesis model alone (batch 1), the un-alignment, the whole
``--align auto`` path, and the raw-PNG serving graph (``predict_raw_png``, built in a
temporary folder). A benchmark: it measures and prints, it asserts nothing.
"""

import argparse
import pathlib
import statistics
import sys
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def timed(fn, runs):
    fn()
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--locator", default=str(ROOT / "saved_models/fetal_head_locator"))
    parser.add_argument("--synthesis", default=str(ROOT / "saved_models/fetal_hc18_v2"))
    parser.add_argument("--image", default=str(
        ROOT / "examples/sample_data/us/hc18/training_set/302_HC.png"))
    args = parser.parse_args(argv)

    import tensorflow as tf

    from usmr_tf.data.images import load_image
    from usmr_tf.export import synthesis
    from usmr_tf.export.raw_pipeline import export_raw_pipeline
    from usmr_tf.export.runtimes import SavedModelRunner
    from usmr_tf.models.head_locator.head_locator_presets import LocatorRunner

    locator, model = LocatorRunner(args.locator), SavedModelRunner(args.synthesis)
    image = load_image(args.image)
    location = locator.locate(image)
    us, transform = synthesis.located_image_slice(args.image, location, model.image_size)
    mr = synthesis.predict_batched(model, us[None])[0]

    def whole():
        loc = locator.locate(load_image(args.image))
        u, tr = synthesis.located_image_slice(args.image, loc, model.image_size)
        m = synthesis.mask_aligned_mr(synthesis.predict_batched(model, u[None])[0], tr)
        synthesis.to_uint8(synthesis.unalign_mr(m, tr))

    rows = {
        "locate (all passes of the export, flip TTA, ellipse fits)": timed(lambda: locator.locate(image), args.runs),
        "align (spatial_normalize)": timed(lambda: synthesis.located_image_slice(
            args.image, location, model.image_size), args.runs),
        "synthesis model alone (batch 1)": timed(lambda: model(us[None]), args.runs),
        "un-align + mask": timed(lambda: synthesis.unalign_mr(
            synthesis.mask_aligned_mr(mr, transform), transform), args.runs),
        "whole --align auto path (read, locate, align, synthesize, un-align)": timed(
            whole, args.runs),
    }
    with tempfile.TemporaryDirectory() as tmp:
        version = export_raw_pipeline(locator.model_dir / str(locator.version),
                                      model.model_dir / str(model.version), tmp, "raw",
                                      locator.thresholds, model.image_size)
        raw = tf.saved_model.load(str(version)).signatures["predict_raw_png"]
        png = tf.constant([pathlib.Path(args.image).read_bytes()])
        rows["serving graph predict_raw_png (decode ... encode PNG)"] = timed(
            lambda: raw(us_png_bytes=png), args.runs)
    print(f"{image.shape[1]}x{image.shape[0]} image {pathlib.Path(args.image).name}, "
          f"median of {args.runs} runs, seconds per image:")
    for name, seconds in rows.items():
        print(f"  {seconds:8.3f}  {name}")


if __name__ == "__main__":
    main()
