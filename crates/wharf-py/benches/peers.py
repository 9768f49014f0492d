"""Wharf called from Python on the peers' logistic model and table, as `cargo xtask
bench-peers` runs it beside scikit-learn's and ONNX Runtime's own Python benches.

Usage: python peers.py REGISTRY_DIR PEERS_DATA_DIR   (prints one JSON line)

The model is the peers' scikit-learn logistic regression imported into REGISTRY_DIR as
`peer-lr`; the rows are the peers' 100,000 x 20 score table. Run with RAYON_NUM_THREADS=1 to
compare with the one-thread rows of the other engines. The probabilities are checked against
scikit-learn's (`logistic_expected_proba.npy`, within 1e-9) first, so nothing is timed that
answers differently.
"""
import json
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

import wharf


def timed(f, reps):
    times = []
    for _ in range(reps):
        start = time.perf_counter()
        f()
        times.append(time.perf_counter() - start)
    return float(np.median(times)), float(np.min(times))


def main(registry, data):
    model = wharf.Registry(str(registry)).load("peer-lr@champion")
    x = np.ascontiguousarray(np.load(data / "score_X.npy"), dtype=np.float64)
    frame = pd.DataFrame(x, columns=model.feature_names)
    want = np.load(data / "logistic_expected_proba.npy")
    got = model.predict_proba(x)
    worst = float(np.max(np.abs(got.reshape(want.shape[0], -1)[:, -1] - want.reshape(want.shape[0], -1)[:, -1])))
    assert worst < 1e-9, f"Wharf from Python differs from scikit-learn by {worst}"
    assert np.array_equal(model.predict_proba(frame), got), "a DataFrame scores as its matrix"
    out = {"engine": "wharf-python", "rows": int(x.shape[0]), "versions": {"numpy": np.__version__, "pandas": pd.__version__}}
    for name, batch in [("numpy_batch_100k", x), ("pandas_batch_100k", frame)]:
        model.predict_proba(batch)
        median, best = timed(lambda: model.predict_proba(batch), 30)
        out[name] = {"seconds_median": median, "rows_per_s_median": x.shape[0] / median, "seconds_best": best}
    row = x[:1].copy()
    for _ in range(1000):
        model.predict_proba(row)
    calls = []
    for _ in range(20000):
        start = time.perf_counter_ns()
        model.predict_proba(row)
        calls.append(time.perf_counter_ns() - start)
    out["single_row_numpy"] = {"calls": len(calls), "median_us": float(np.median(calls)) / 1e3}
    print(json.dumps(out))


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]))
