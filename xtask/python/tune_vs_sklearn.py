#!/usr/bin/env python3
"""Wharf's grid search next to scikit-learn's GridSearchCV, in one sitting: the same space,
the same folds, the best cross-validated score and the wall time.

Wharf searches the declared logistic space (l2 = 0.001 ... 100) by stratified 5-fold
cross-validation on each bundled classification table and writes out the fold of every row.
scikit-learn then searches the same values on the same folds (`PredefinedSplit`): a pipeline
that imputes means and scales numeric columns and one-hot encodes text columns, fitted on each
fold's training part, then `LogisticRegression(C = 1 / l2)`. linfa minimises
`sum(log loss) + l2 / 2 * |w|^2` and scikit-learn `C * sum(log loss) + |w|^2 / 2`, so the
penalties match. Both use every core; each time is the best of three runs.

    python3 -m venv .venv && .venv/bin/pip install numpy scikit-learn==1.9.1
    cargo build --release -p wharf-ml --example tune_vs_sklearn
    .venv/bin/python xtask/python/tune_vs_sklearn.py target/release/examples/tune_vs_sklearn OUT_DIR

Then successive halving: Wharf races 27 log-uniform draws of l2 (factor 3, stratified
5-fold); scikit-learn's HalvingGridSearchCV races the same 27 values (factor 3, the same
smallest number of rows, its own stratified 5-fold). The subsets and folds differ, so the
winners are compared by their score on the full table's folds (Wharf's last round, and
scikit-learn's best candidate re-scored on Wharf's folds).

Prints two markdown tables.
"""
import csv
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import sklearn
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.experimental import enable_halving_search_cv  # noqa: F401
from sklearn.model_selection import GridSearchCV, HalvingGridSearchCV, PredefinedSplit, StratifiedKFold
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import FunctionTransformer, OneHotEncoder, StandardScaler


def as_float(a):
    return np.where(a == "", np.nan, a).astype(float)


def read(path):
    with open(path, newline="") as f:
        rows = list(csv.reader(f))
    header, body = rows[0], np.array(rows[1:], dtype=object)
    x, y = body[:, :-1], body[:, -1].astype(str)

    def numeric(j):
        try:
            as_float(x[:, j])
            return True
        except ValueError:
            return False

    num = [j for j in range(x.shape[1]) if numeric(j)]
    text = [j for j in range(x.shape[1]) if j not in num]
    return x, y, num, text


def main():
    wharf, out = sys.argv[1], Path(sys.argv[2])
    out.mkdir(parents=True, exist_ok=True)
    lines = subprocess.run([wharf, str(out)], check=True, capture_output=True, text=True).stdout
    rows, halving_rows = [], []
    for line in lines.splitlines():
        w = json.loads(line)
        x, y, numeric, text = read(out / f"{w['table']}.csv")
        prep = ColumnTransformer(
            [
                (
                    "num",
                    make_pipeline(FunctionTransformer(as_float), SimpleImputer(strategy="mean"), StandardScaler()),
                    numeric,
                ),
                ("cat", OneHotEncoder(handle_unknown="ignore"), text),
            ]
        )
        l2s = [float(t["l2"]) for t in w["trials"]]
        grid = {"model__C": [1.0 / a for a in l2s]}
        model = Pipeline([("prep", prep), ("model", LogisticRegression(max_iter=1000))])
        search = GridSearchCV(
            model, grid, cv=PredefinedSplit(w["test_fold"]), scoring=w["metric"], n_jobs=-1, refit=False
        )
        seconds = float("inf")
        for _ in range(3):  # best of three: the first run also starts joblib's workers
            start = time.perf_counter()
            search.fit(x, y)
            seconds = min(seconds, time.perf_counter() - start)
        best = search.best_index_
        sk_best, sk_std = search.cv_results_["mean_test_score"][best], search.cv_results_["std_test_score"][best]
        rows.append(
            f"| {w['table']} | {w['metric']} | {w['best']['l2']} | {w['best']['mean']:.4f} | "
            f"{1.0 / search.best_params_['model__C']:g} | {sk_best:.4f} ± {sk_std:.4f} | "
            f"{w['best']['mean'] - sk_best:+.4f} | {w['seconds']:.3f} s | {seconds:.3f} s | "
            f"{seconds / w['seconds']:.1f} |"
        )
        h = w["halving"]
        halving = HalvingGridSearchCV(
            model,
            {"model__C": [1.0 / float(a) for a in h["candidates"]]},
            factor=3,
            min_resources=h["min_rows"],
            cv=StratifiedKFold(5, shuffle=True, random_state=42),
            scoring=w["metric"],
            n_jobs=-1,
            refit=False,
            random_state=42,
        )
        h_seconds = float("inf")
        for _ in range(3):
            start = time.perf_counter()
            halving.fit(x, y)
            h_seconds = min(h_seconds, time.perf_counter() - start)
        sk_c = halving.best_params_["model__C"]
        # The winner re-scored on Wharf's folds, so both winners are measured alike.
        rescored = GridSearchCV(
            model, {"model__C": [sk_c]}, cv=PredefinedSplit(w["test_fold"]), scoring=w["metric"], refit=False
        ).fit(x, y)
        sk_score = rescored.cv_results_["mean_test_score"][0]
        wharf_on_folds = GridSearchCV(
            model,
            {"model__C": [1.0 / float(h["best"]["l2"])]},
            cv=PredefinedSplit(w["test_fold"]),
            scoring=w["metric"],
            refit=False,
        ).fit(x, y)
        w_score = wharf_on_folds.cv_results_["mean_test_score"][0]
        halving_rows.append(
            f"| {w['table']} | {w['metric']} | {float(h['best']['l2']):.3g} | {w_score:.4f} | "
            f"{1.0 / sk_c:.3g} | {sk_score:.4f} | {w_score - sk_score:+.4f} | {h['seconds']:.3f} s | "
            f"{h_seconds:.3f} s | {h_seconds / h['seconds']:.1f} |"
        )
    print(f"scikit-learn {sklearn.__version__}\n")
    print(
        "| table | metric | Wharf best l2 | Wharf CV | scikit-learn best l2 | scikit-learn CV | difference | "
        "Wharf time | scikit-learn time | time ratio |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    print("\n".join(rows))
    print()
    print(
        "| table | metric | Wharf winner l2 | its CV | scikit-learn winner l2 | its CV | difference | "
        "Wharf time | scikit-learn time | time ratio |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    print("\n".join(halving_rows))


if __name__ == "__main__":
    main()
