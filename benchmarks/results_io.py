"""benchmarks/results.json: one section per benchmark script, merged in place."""

import json
import os
import pathlib
import time

RESULTS = pathlib.Path(__file__).resolve().parent / "results.json"


def load():
    return json.loads(RESULTS.read_text()) if RESULTS.exists() else {}


def update(section, payload):
    data = load()
    data[section] = {**payload, "written": time.strftime("%Y-%m-%d %H:%M:%S"),
                     "cpu_count": os.cpu_count()}
    tmp = RESULTS.with_suffix(".tmp")
    tmp.write_text(json.dumps(data, indent=1, sort_keys=True) + "\n")
    tmp.replace(RESULTS)


def timed(fn, repeats):
    """Minimum of `repeats` calls of `fn()` (seconds) and the 1-min load average at each."""
    times, loads = [], []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
        loads.append(round(os.getloadavg()[0], 2))
    return {"best_s": min(times), "times_s": times, "loadavg_1m": loads}
