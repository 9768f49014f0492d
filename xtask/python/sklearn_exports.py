#!/usr/bin/env python3
"""Test data for Wharf's scikit-learn import tests: two fitted scikit-learn models, exported
as JSON, and scikit-learn's own predict_proba on every scoring row.

`cargo xtask test` runs this with the scikit-learn of its pinned BentoML venv and points the
tests at the output with WHARF_TEST_SKLEARN_EXPORTS. By hand:

    python3 -m venv .venv && .venv/bin/pip install scikit-learn==1.9.1
    .venv/bin/python xtask/python/sklearn_exports.py OUT_DIR
    WHARF_TEST_SKLEARN_EXPORTS=OUT_DIR cargo test -p wharf-core --test sklearn_import

Writes into OUT_DIR:

  score.csv                        100,000 x 20 scoring rows (header f0..f19,y), floats with 17
                                   significant digits, so a correctly rounding parser gives
                                   back the exact f64s scikit-learn saw
  logistic.json                    LogisticRegression (lbfgs): coef, intercept, classes
  logistic_expected_proba.csv      its P(y=1) for every scoring row (header p1)
  rf_trees.json                    RandomForestClassifier(100 trees, depth 8), every tree's arrays
  rf_expected_proba.csv            its P(y=1) for every scoring row (header p1)
  body_100_expected_logistic.json  {"n": 100, "p1": [...]}: the first 100 rows' P(y=1)

The data and models are seeded (the same seed and shapes as the project's peer benchmarks),
so two runs with the same scikit-learn write the same files.
"""
import json
import sys
from pathlib import Path

import numpy as np
import sklearn
from sklearn.datasets import make_classification
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression

SEED = 20261122
N_FEATURES = 20
N_TRAIN = 20_000
N_SCORE = 100_000


def write_csv(path: Path, X: np.ndarray, y: np.ndarray) -> None:
    cols = [f"f{i}" for i in range(X.shape[1])] + ["y"]
    data = np.column_stack([X, y.astype(np.float64)])
    fmt = ["%.17g"] * X.shape[1] + ["%d"]
    np.savetxt(path, data, delimiter=",", fmt=fmt, header=",".join(cols), comments="")


def export_forest(rf: RandomForestClassifier) -> dict:
    trees = []
    for est in rf.estimators_:
        t = est.tree_
        value = t.value[:, 0, :].astype(np.float64)
        # Per-node class fractions (scikit-learn >= 1.4 stores them already; normalising
        # again changes nothing there and makes older versions agree).
        proba = value / value.sum(axis=1, keepdims=True)
        trees.append({
            "children_left": t.children_left.tolist(),
            "children_right": t.children_right.tolist(),
            "feature": t.feature.tolist(),
            "threshold": t.threshold.tolist(),
            "proba_class1": proba[:, 1].tolist(),
        })
    return {
        "model": "RandomForestClassifier",
        "sklearn_version": sklearn.__version__,
        "n_estimators": len(trees),
        "n_features": int(rf.n_features_in_),
        "classes": rf.classes_.tolist(),
        "trees": trees,
    }


def main() -> None:
    if len(sys.argv) != 2:
        sys.exit("usage: sklearn_exports.py OUT_DIR")
    out = Path(sys.argv[1])
    out.mkdir(parents=True, exist_ok=True)
    X, y = make_classification(
        n_samples=N_TRAIN + N_SCORE, n_features=N_FEATURES, n_informative=10,
        n_redundant=5, n_repeated=0, n_classes=2, class_sep=1.0, flip_y=0.01,
        random_state=SEED,
    )
    X = np.ascontiguousarray(X, dtype=np.float64)
    y = y.astype(np.int64)
    Xtr, ytr = X[:N_TRAIN], y[:N_TRAIN]
    Xsc, ysc = np.ascontiguousarray(X[N_TRAIN:]), y[N_TRAIN:]
    write_csv(out / "score.csv", Xsc, ysc)

    lr = LogisticRegression(C=1.0, solver="lbfgs", max_iter=1000, tol=1e-8).fit(Xtr, ytr)
    p_lr = lr.predict_proba(Xsc)[:, 1]
    np.savetxt(out / "logistic_expected_proba.csv", p_lr, fmt="%.17g", header="p1", comments="")
    coef = lr.coef_[0].astype(np.float64)
    intercept = float(lr.intercept_[0])
    (out / "logistic.json").write_text(json.dumps({
        "model": "LogisticRegression",
        "sklearn_version": sklearn.__version__,
        "solver": "lbfgs", "C": 1.0, "penalty": "l2",
        "n_features": N_FEATURES,
        "classes": lr.classes_.tolist(),
        "coef": coef.tolist(),
        "intercept": intercept,
        "coef_hex": [float(c).hex() for c in coef],
        "intercept_hex": intercept.hex(),
    }, indent=1))
    (out / "body_100_expected_logistic.json").write_text(json.dumps({"n": 100, "p1": p_lr[:100].tolist()}))

    rf = RandomForestClassifier(n_estimators=100, max_depth=8, random_state=SEED, n_jobs=1).fit(Xtr, ytr)
    p_rf = rf.predict_proba(Xsc)[:, 1]
    np.savetxt(out / "rf_expected_proba.csv", p_rf, fmt="%.17g", header="p1", comments="")
    (out / "rf_trees.json").write_text(json.dumps(export_forest(rf)))
    print(json.dumps({"out": str(out), "sklearn": sklearn.__version__, "rows": int(len(Xsc))}))


if __name__ == "__main__":
    main()
