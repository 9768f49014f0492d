#!/usr/bin/env python3
"""Wharf's random forest next to scikit-learn's, in one sitting: holdout accuracy and fit time.

Both fit 100 trees of depth 8 with their default `max_features` (sqrt) on the same rows:

* the peer benchmarks' table: make_classification(120,000 x 20, 10 informative, 5 redundant,
  flip_y=0.01, seed 20261122), rows 0-19,999 to train, the other 100,000 to score;
* the bundled classification tables (breast cancer, iris, lead scoring), a quarter held out,
  over 10 splits (the same rows for both: Wharf writes its splits out as CSV).

Accuracy is averaged over forest seeds (and splits), because one forest against another is
mostly seed noise on small tables. Fit time alternates the contenders round by round.

    python3 -m venv .venv && .venv/bin/pip install numpy scikit-learn==1.9.1
    cargo build --release -p wharf-ml --example forest_accuracy
    .venv/bin/python xtask/python/forest_vs_sklearn.py target/release/examples/forest_accuracy OUT_DIR

Prints markdown tables; raw results go to OUT_DIR/results.jsonl.
"""
import csv
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import sklearn
from sklearn.datasets import make_classification
from sklearn.ensemble import RandomForestClassifier

SEED = 20261122
N_TRAIN = 20_000
N_SCORE = 100_000
TREES = 100
DEPTH = 8
SPLITS = 10
PEER_SEEDS = int(os.environ.get("FOREST_SEEDS", "5"))
ROUNDS = int(os.environ.get("FOREST_ROUNDS", "3"))
TABLES = ["breast_cancer", "iris", "lead_scoring"]


def write_peers_table(out: Path) -> None:
    if (out / "test.csv").exists():
        return
    out.mkdir(parents=True, exist_ok=True)
    X, y = make_classification(
        n_samples=N_TRAIN + N_SCORE, n_features=20, n_informative=10, n_redundant=5,
        flip_y=0.01, random_state=SEED,
    )
    cols = [f"f{i}" for i in range(20)] + ["y"]
    for name, rows in [("train.csv", slice(0, N_TRAIN)), ("test.csv", slice(N_TRAIN, None))]:
        data = np.column_stack([X[rows], y[rows].astype(np.float64)])
        np.savetxt(out / name, data, delimiter=",", fmt=["%.17g"] * 20 + ["%d"],
                   header=",".join(cols), comments="")


def read_table(path: Path, target: str, categorical: list[str], levels: dict[str, list[str]] | None = None):
    """The CSV as a float matrix: numbers as they are (empty = NaN), text columns one-hot."""
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    names = [c for c in rows[0].keys() if c != target]
    levels = levels if levels is not None else {
        c: sorted({r[c] for r in rows if r[c] != ""}) for c in names if c in categorical
    }
    columns = []
    for c in names:
        if c in categorical:
            for level in levels[c]:
                columns.append([1.0 if r[c] == level else 0.0 for r in rows])
        else:
            columns.append([float(r[c]) if r[c] != "" else np.nan for r in rows])
    X = np.array(columns, dtype=np.float64).T.copy()
    y = np.array([r[target] for r in rows])
    return X, y, levels


def sklearn_fit(X, y, Xt, yt, seed: int, n_jobs: int) -> dict:
    rf = RandomForestClassifier(n_estimators=TREES, max_depth=DEPTH, n_jobs=n_jobs, random_state=seed)
    start = time.perf_counter()
    rf.fit(X, y)
    fit_s = time.perf_counter() - start
    return {"accuracy": float((rf.predict(Xt) == yt).mean()), "fit_s": fit_s, "threads": n_jobs}


def wharf_fit(binary: str, args: list[str], threads: int) -> dict:
    env = dict(os.environ, RAYON_NUM_THREADS=str(threads))
    out = subprocess.run([binary, *args], env=env, check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def main() -> None:
    if len(sys.argv) != 3:
        sys.exit("usage: forest_vs_sklearn.py FOREST_ACCURACY_BINARY OUT_DIR")
    binary, out = sys.argv[1], Path(sys.argv[2])
    out.mkdir(parents=True, exist_ok=True)
    results = open(out / "results.jsonl", "a")

    def record(**kw):
        results.write(json.dumps(kw) + "\n")
        results.flush()
        return kw

    print(f"scikit-learn {sklearn.__version__}, numpy {np.__version__}; load {os.getloadavg()}", file=sys.stderr)
    peers = out / "peers"
    write_peers_table(peers)
    subprocess.run([binary, "export", str(out / "bundled")], check=True)
    X, y, _ = read_table(peers / "train.csv", "y", [])
    Xt, yt, _ = read_table(peers / "test.csv", "y", [])
    y, yt = y.astype(float).astype(int), yt.astype(float).astype(int)
    wharf_csv = ["csv", str(peers / "train.csv"), str(peers / "test.csv"), "y"]

    # Fit time, alternating the order each round.
    times = {k: [] for k in ["sklearn-1", "sklearn-2", "wharf-1", "wharf-2"]}
    for r in range(ROUNDS):
        runs = [
            ("sklearn-1", lambda: sklearn_fit(X, y, Xt, yt, 0, 1)),
            ("wharf-1", lambda: wharf_fit(binary, wharf_csv + ["0"], 1)),
            ("sklearn-2", lambda: sklearn_fit(X, y, Xt, yt, 0, 2)),
            ("wharf-2", lambda: wharf_fit(binary, wharf_csv + ["0"], 2)),
        ]
        for name, run in runs if r % 2 == 0 else runs[::-1]:
            res = record(kind="time", who=name, round=r, **{k: v for k, v in run().items() if k != "params"})
            times[name].append(res["fit_s"])
            print(f"round {r} {name}: fit {res['fit_s']:.2f} s, accuracy {res['accuracy']:.4f}", file=sys.stderr)

    # Accuracy over forest seeds (peers' table) and over splits (bundled tables).
    acc = {}
    for seed in range(PEER_SEEDS):
        s = record(kind="acc", table="peers", who="sklearn", seed=seed, **sklearn_fit(X, y, Xt, yt, seed, 2))
        w = wharf_fit(binary, wharf_csv + [str(seed)], 2)
        record(kind="acc", table="peers", who="wharf", seed=seed, accuracy=w["accuracy"], fit_s=w["fit_s"])
        acc.setdefault("peers", ([], []))
        acc["peers"][0].append(s["accuracy"])
        acc["peers"][1].append(w["accuracy"])
    for table in TABLES:
        base = out / "bundled" / table
        categorical = [c for c in (base / "categorical.txt").read_text().split("\n") if c]
        target = {"breast_cancer": "diagnosis", "iris": "species", "lead_scoring": "converted"}[table]
        acc[table] = ([], [])
        for split in range(SPLITS):
            Xs, ys, levels = read_table(base / str(split) / "train.csv", target, categorical)
            Xts, yts, _ = read_table(base / str(split) / "test.csv", target, categorical, levels)
            s = sklearn_fit(Xs, ys, Xts, yts, split, 2)
            w = wharf_fit(binary, ["bundled", table, str(split), str(split)], 2)
            record(kind="acc", table=table, who="sklearn", split=split, **s)
            record(kind="acc", table=table, who="wharf", split=split, accuracy=w["accuracy"], fit_s=w["fit_s"])
            acc[table][0].append(s["accuracy"])
            acc[table][1].append(w["accuracy"])

    print(f"\nscikit-learn {sklearn.__version__}; {TREES} trees, max depth {DEPTH}, max_features sqrt\n")
    print("| table | fits | scikit-learn accuracy | Wharf accuracy | Wharf − scikit-learn |")
    print("|---|---|---|---|---|")
    for table, (s, w) in acc.items():
        diffs = [b - a for a, b in zip(s, w)]
        sem = statistics.stdev(diffs) / len(diffs) ** 0.5 if len(diffs) > 1 else 0.0
        print(f"| {table} | {len(s)} | {statistics.mean(s):.4f} | {statistics.mean(w):.4f} | "
              f"{statistics.mean(diffs):+.4f} ± {sem:.4f} |")
    print("\n| fit, peers' table (20,000 × 20) | median | runs |")
    print("|---|---|---|")
    for name, label in [("sklearn-1", "scikit-learn, n_jobs=1"), ("wharf-1", "Wharf, 1 thread"),
                        ("sklearn-2", "scikit-learn, n_jobs=2"), ("wharf-2", "Wharf, 2 threads")]:
        runs = ", ".join(f"{t:.2f}" for t in times[name])
        print(f"| {label} | {statistics.median(times[name]):.2f} s | {runs} |")


if __name__ == "__main__":
    main()
