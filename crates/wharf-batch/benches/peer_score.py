"""The scikit-learn peer of `wharf score`: read a CSV (or Parquet) file with pandas, score it
with a fitted model's `predict_proba`, write a CSV (or Parquet) file of predictions and
probabilities.

This is what a data scientist writes instead of a batch-scoring tool, so it is what
`wharf score` is measured against, as a whole command (start-up, reading, scoring and
writing included) on the same file, on the same machine, in the same sitting.

Setup, once (the peer benchmarks' venv and data; see their README):

    bash ../shared/peers/setup.sh
    $VENV/bin/python ../shared/peers/data.py            # writes score.csv, logistic.joblib, rf.joblib, ...
    $VENV/bin/pip install pandas pyarrow                # pandas for this script, pyarrow for the Parquet copy

Then, with DATA the peers' data directory:

    # the same models in Wharf's registry
    wharf models import --format sklearn-logistic-json --name peer-lr DATA/logistic.json
    wharf models import --format sklearn-forest-json   --name peer-rf DATA/rf_trees.json
    # a Parquet copy of the CSV (pyarrow, Snappy: what pandas users write)
    $VENV/bin/python -c "import pyarrow.csv as c, pyarrow.parquet as p; p.write_table(c.read_csv('DATA/score.csv'), 'score.parquet')"
    cargo build --release -p wharf-cli
    hyperfine --warmup 1 --runs 5 \
        '$VENV/bin/python peer_score.py DATA/logistic.joblib DATA/score.csv py-lr.csv' \
        'target/release/wharf score -q -m peer-lr -i DATA/score.csv -o rs-lr.csv' \
        '$VENV/bin/python peer_score.py DATA/logistic.joblib score.parquet py-lr.parquet' \
        'target/release/wharf score -q -m peer-lr -i score.parquet -o rs-lr.parquet'
    # and the same three with rf.joblib / peer-rf

hyperfine alternates nothing by itself; run the whole block three times and take the
median of the per-round ratios. `--check EXPECTED.csv` compares P(class 1) with the peers'
expected probabilities (sklearn's own, for all rows).
"""

import sys
import time

import joblib
import numpy as np
import pandas as pd


def main(argv):
    check = None
    if "--check" in argv:
        i = argv.index("--check")
        check = argv[i + 1]
        argv = argv[:i] + argv[i + 2 :]
    model_path, input_path, output_path = argv[1:4]
    started = time.perf_counter()
    model = joblib.load(model_path)
    frame = pd.read_parquet(input_path) if input_path.endswith(".parquet") else pd.read_csv(input_path)
    features = [f"f{j}" for j in range(model.n_features_in_)]
    proba = model.predict_proba(frame[features].to_numpy(dtype=np.float64))
    classes = [str(c) for c in model.classes_]
    out = pd.DataFrame({"prediction": np.asarray(classes)[proba.argmax(axis=1)]})
    for j, c in enumerate(classes):
        out[f"prob_{c}"] = proba[:, j]
    if output_path.endswith(".parquet"):
        out.to_parquet(output_path, index=False)
    else:
        out.to_csv(output_path, index=False)
    if check:
        expected = np.loadtxt(check, delimiter=",", skiprows=1, usecols=-1)
        worst = float(np.max(np.abs(proba[:, 1] - expected)))
        print(f"max |p - expected| = {worst:.3g}", file=sys.stderr)
    seconds = time.perf_counter() - started
    print(f"{len(frame)} rows in {seconds:.3f} s ({len(frame) / seconds:,.0f} rows/s)", file=sys.stderr)


if __name__ == "__main__":
    main(sys.argv)
