"""The seeded Table 1 at toy scale, in a subprocess (op determinism is process-wide)."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from usmr_tf.errors import ConfigError
from usmr_tf.evaluation import reproduce as rp
from usmr_tf.evaluation import seeded

SCRIPT = r"""
import sys
from usmr_tf.evaluation import reproduce as rp, seeded
record, cache, max_cells, workers, worker = sys.argv[1], sys.argv[2], *map(int, sys.argv[3:])
spec = seeded.Spec(budget=rp.Budget(steps=2, batch_size=4, image_size=32, base_filters=4,
                                    depth=2),
                   seeds=(0, 1), models=("ae", "gan"), n_eval=6, n_reference=8,
                   registration_size=32, phantom_counts=(24, 24), realism_epochs=2)
seeded.run(record, spec, data=("phantoms", "real"), real_cache=cache,
           work_dir=record + "-work", max_cells=max_cells, workers=workers, worker=worker,
           log=print)
"""


def _toy_cache(path, size=32, seed=0):
    """A prepared cache with US train/test and MR train/test/heldout splits."""
    from usmr_tf.data.cache import write_prepared

    rng = np.random.default_rng(seed)

    def part(n, tag):
        images = np.tanh(rng.normal(0, 1, (n, size, size, 1))).astype(np.float32)
        return images, [{"subject": f"{tag}{i}", "dataset": tag} for i in range(n)]

    parts = {"us": {"train": part(20, "us"), "test": part(8, "ust")},
             "mr": {"train": part(20, "mr"), "test": part(8, "mrt"),
                    "heldout": part(7, "left")}}
    return write_prepared(path, parts, {"size": size})


def _start(record, cache, max_cells, repo_root, workers=1, worker=0):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    return subprocess.Popen([sys.executable, "-c", SCRIPT, str(record), str(cache),
                             str(max_cells), str(workers), str(worker)],
                            cwd=repo_root, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def _wait(proc):
    out, err = proc.communicate(timeout=400)
    assert proc.returncode == 0, err[-3000:]
    return out


@pytest.mark.slow  # ~75 s: toy Table 1 cells trained, killed and resumed (docs/testing.md)
def test_cells_resume_summarize_and_judge_the_claims(tmp_path, repo_root):
    cache = _toy_cache(tmp_path / "cache")
    record_path = tmp_path / "table1.json"
    first = _wait(_start(record_path, cache, 3, repo_root))
    assert "3 cell(s) to run" in first
    part = json.loads(record_path.read_text())
    done = [(d, m, s) for d, ms in part["cells"].items() for m, ss in ms.items() for s in ss]
    assert len(done) == 3

    # the 5 missing cells, shared by two workers writing the same record
    workers = [_start(record_path, cache, 100, repo_root, 2, w) for w in (0, 1)]
    outs = [_wait(w) for w in workers]
    assert "3 cell(s) to run" in outs[0] and "2 cell(s) to run" in outs[1]
    record = json.loads(record_path.read_text())
    for d, m, s in done:  # finished cells are kept as they were
        assert record["cells"][d][m][s] == part["cells"][d][m][s]
    for data in ("phantoms", "real"):
        for model in ("ae", "gan"):
            assert set(record["cells"][data][model]) == {"0", "1"}
    ph = record["cells"]["phantoms"]["gan"]["0"]
    assert len(ph["per_image"]["deformation"]) == 6 and len(ph["per_image"]["psnr"]) == 6
    assert {"swd", "realism", "mae", "psnr", "ssim", "diversity"} <= set(ph["metrics"])
    real = record["cells"]["real"]["ae"]["1"]["metrics"]
    assert {"swd", "realism", "swd_left_out", "realism_left_out"} <= set(real)
    assert "mae" not in real
    # seeds differ, so do the scores; the reference columns are seed-free
    assert ph["per_image"]["deformation"] != record["cells"]["phantoms"]["gan"]["1"][
        "per_image"]["deformation"]
    assert record["references"]["real"]["identity"]["metrics"]["diversity"] == 1.0
    assert "structure" not in record["references"]["real"]["real"]["metrics"]

    summary = record["summary"]["phantoms"]["gan"]["swd"]
    values = [record["cells"]["phantoms"]["gan"][s]["metrics"]["swd"] for s in "01"]
    assert summary["mean"] == pytest.approx(np.mean(values))
    assert summary["sd"] == pytest.approx(np.std(values, ddof=1)) and summary["n"] == 2
    assert record["claims"]["phantoms"] == {}  # no claim of the paper pairs AE and GAN
    # the claims read the cells: the same cells under the full model's name
    for data in ("phantoms", "real"):
        record["cells"][data]["ours"] = record["cells"][data].pop("gan")
    judged = seeded.judge(record)
    claim = judged["phantoms"]["ours_vs_ae"]["by_metric"]["deformation"]
    assert claim["n_seeds"] == 2 and claim["n_images"] == 6
    assert claim["verdict"] in ("holds", "does not hold", "within noise")
    assert set(judged["real"]["ours_vs_ae"]["by_metric"]) == set(seeded.CLAIM_METRICS["real"])
    markdown = seeded.format_markdown(record, seeded.summarize(record), judged)
    assert "not for diagnosis" in markdown and "Ours better than AE" in markdown
    assert "| Seeds |" in markdown and "*0.46*" in markdown  # the paper's value beside
    glance = seeded.format_verdicts(judged["phantoms"])
    header, _, row = glance.splitlines()[:3]
    assert header.count("|") == len(seeded.CLAIM_METRICS["phantoms"]) + 2
    verdict = seeded.VERDICT_MARKS[claim["verdict"]]
    assert row.startswith("| Ours better than AE | " + verdict + " (")
    assert seeded.format_verdicts({}) == ""
    assert "Realism test, left-out MR source" in record_path.with_suffix(".md").read_text()
    png = record_path.with_suffix(".png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n"


def test_a_record_of_another_budget_is_refused(tmp_path):
    spec = seeded.Spec(budget=rp.Budget(steps=3), seeds=(0,), models=("ae",))
    path = tmp_path / "t.json"
    path.write_text(json.dumps(seeded.new_record(spec)))
    assert seeded.load_record(path, spec)["spec"] == spec.as_dict()
    other = seeded.Spec(budget=rp.Budget(steps=4), seeds=(0,), models=("ae",))
    with pytest.raises(ConfigError, match="another budget"):
        seeded.load_record(path, other)


def test_spec_and_run_arguments_are_checked(tmp_path):
    with pytest.raises(ConfigError, match="distinct"):
        seeded.Spec(seeds=(1, 1))
    with pytest.raises(ConfigError, match="unknown model"):
        seeded.Spec(models=("unet",))
    with pytest.raises(ConfigError, match="prepared cache"):
        seeded.run(tmp_path / "t.json", seeded.Spec(), data=("real",))
    assert not (tmp_path / "t.json").exists()


def test_results_blocks_are_regenerated_from_the_record(repo_root):
    record = json.loads((repo_root / "docs/table1.json").read_text())
    summary, judged = seeded.summarize(record), seeded.judge(record)
    blocks = seeded.results_blocks(record, summary, judged)
    assert set(blocks) == {"phantoms", "real", "prose", "cost"}
    doc = ("intro by hand\n<!-- table1:real -->\nstale\n<!-- /table1:real -->\n"
           "between\n<!-- table1:prose -->\n<!-- /table1:prose -->\nend by hand\n")
    out = seeded.fill_results(doc, blocks)
    assert out.startswith("intro by hand\n<!-- table1:real -->\nTest: ")
    assert "stale" not in out and "\nbetween\n" in out and out.endswith("end by hand\n")
    assert seeded.fill_results(out, blocks) == out  # regenerating is stable
    assert "| Seeds |" in out and "Claims at a glance" in out
    # the prose groups each claim's metrics by verdict, with the record's differences
    claim = judged["phantoms"]["ours_vs_ae"]
    line = next(l for l in blocks["prose"].splitlines() if l.startswith(
        f"- **{claim['text']}.**"))
    held = [m for m, c in claim["by_metric"].items() if c["verdict"] == "holds"]
    for metric in held:
        diff = claim["by_metric"][metric]["difference"]
        assert f"{seeded.PROSE_NAMES[metric]} {diff:+.3g}" in line.split("within noise")[0]
    n_cells = sum(len(s) for m in record["cells"].values() for s in m.values())
    assert f"all {n_cells} cells together" in blocks["cost"]
    with pytest.raises(ValueError, match="closing"):
        seeded.fill_results("<!-- table1:cost -->\nno end\n", blocks)
    # the committed page is what the record generates
    results = (repo_root / "docs/results.md").read_text()
    assert seeded.fill_results(results, blocks) == results
