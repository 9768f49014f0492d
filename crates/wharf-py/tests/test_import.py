"""`wharf.import_model`: XGBoost and LightGBM models from the files those libraries wrote (the
repository's committed seed models), scored in Python without either library, bit for bit
what `wharf models import` and `wharf predict` answer on the Rust side."""

import json

import numpy as np
import pytest

import wharf


def fixtures(data_dir):
    return data_dir.parents[1] / "wharf-trees" / "tests" / "fixtures"


def rows(n=300):
    """20 numeric columns with missing cells; columns 7 and 8 hold small category codes, as
    the seed models were trained on."""
    rng = np.random.default_rng(7)
    x = rng.normal(size=(n, 20))
    x[:, 7] = rng.integers(0, 12, size=n)
    x[:, 8] = rng.integers(0, 9, size=n)
    x[rng.random(size=x.shape) < 0.05] = np.nan
    return x


@pytest.mark.parametrize(
    "fmt,file,classes",
    [("xgboost", "seed_xgboost.json", ["low", "mid", "high"]), ("lightgbm", "seed_lightgbm.txt", None)],
)
def test_imported_models_score_what_the_cli_scores(cli, data_dir, fmt, file, classes):
    path = fixtures(data_dir) / file
    model = wharf.import_model(fmt, path, classes=classes)
    assert model.task == "classification"
    assert model.classes == (classes or ["0", "1", "2"])
    x = rows()

    name = f"seed-{fmt}"
    args = ["models", "import", str(path), "--name", name, "--format", fmt, "-q"]
    if classes:
        args += ["--classes", ",".join(classes)]
    cli(*args)
    csv = cli.work / f"{name}.csv"
    header = ",".join(model.feature_names)
    body = "\n".join(",".join("" if np.isnan(v) else repr(float(v)) for v in row) for row in x)
    csv.write_text(f"{header}\n{body}\n")
    out = cli.work / f"{name}.jsonl"
    cli("predict", "-m", name, "-i", str(csv), "-o", str(out), "-q")
    with open(out) as f:
        expected = [json.loads(line) for line in f]

    proba = model.predict_proba(x)
    want = np.array([[r[wharf.prob_column(c)] for c in model.classes] for r in expected])
    assert np.array_equal(proba, want)
    assert list(model.predict(x)) == [r["prediction"] for r in expected]


def test_a_bad_import_is_a_python_exception_naming_the_problem(data_dir, tmp_path):
    with pytest.raises(wharf.WharfError, match="expected 'xgboost' or 'lightgbm'"):
        wharf.import_model("onnx", fixtures(data_dir) / "seed_xgboost.json")
    broken = tmp_path / "broken.json"
    broken.write_text('{"learner": ')
    with pytest.raises(wharf.WharfError):
        wharf.import_model("xgboost", broken)
    with pytest.raises(wharf.WharfError, match="classes"):
        wharf.import_model("xgboost", fixtures(data_dir) / "seed_xgboost.json", classes=["only-one"])
