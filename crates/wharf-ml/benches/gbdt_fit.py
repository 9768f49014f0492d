"""Fit time of LightGBM and scikit-learn's HistGradientBoosting on the peers' 100k x 20
table ($PEERS_DATA/score_X.npy, score_y.npy), with the hyper-parameters of
benches/gbdt_fit.rs (200 trees, 31 leaves, learning rate 0.1, 20 rows a leaf, 255 bins,
no early stopping), on 1 and 2 threads; the best of GBDT_FIT_REPEATS (default 3) fits.
Prints one JSON line on stdout.
"""
import json
import os
import sys
import time
from pathlib import Path

import lightgbm
import numpy as np
import sklearn
from sklearn.ensemble import HistGradientBoostingClassifier
from threadpoolctl import threadpool_limits


def best_of(repeats, fit):
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        fit()
        best = min(best, time.perf_counter() - start)
    return best


def main():
    data = Path(os.environ.get("PEERS_DATA", "/tmp/peers-data"))
    x = np.load(data / "score_X.npy")
    y = np.load(data / "score_y.npy").astype(np.int64)
    repeats = int(os.environ.get("GBDT_FIT_REPEATS", "3"))
    trees = int(os.environ.get("GBDT_FIT_TREES", "200"))
    out = {"lightgbm": lightgbm.__version__, "sklearn": sklearn.__version__}
    for threads in (1, 2):
        lgb = lightgbm.LGBMClassifier(n_estimators=trees, num_leaves=31, learning_rate=0.1,
                                      min_child_samples=20, reg_lambda=0.0, max_bin=255,
                                      n_jobs=threads, verbose=-1)
        out[f"lightgbm_fit_{threads}t_s"] = best_of(repeats, lambda: lgb.fit(x, y))
        hgb = HistGradientBoostingClassifier(max_iter=trees, max_leaf_nodes=31, learning_rate=0.1,
                                             min_samples_leaf=20, l2_regularization=0.0,
                                             max_bins=255, early_stopping=False)
        with threadpool_limits(limits=threads):
            out[f"sklearn_hgb_fit_{threads}t_s"] = best_of(repeats, lambda: hgb.fit(x, y))
        print(f"{threads} thread(s): lightgbm {out[f'lightgbm_fit_{threads}t_s']:.3f} s, "
              f"sklearn {out[f'sklearn_hgb_fit_{threads}t_s']:.3f} s", file=sys.stderr)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
