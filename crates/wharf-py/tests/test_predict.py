"""Predictions from Python equal the `wharf` CLI's bit for bit, for every input type."""

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

import wharf


@pytest.fixture(scope="module")
def lead_df(data_dir):
    return pd.read_csv(data_dir / "lead_scoring.csv").drop(columns=["lead_id", "converted"])


@pytest.fixture(scope="module")
def diabetes_df(data_dir):
    return pd.read_csv(data_dir / "diabetes.csv").drop(columns=["progression"])


def expected(models, name):
    rows = models["expected"][name]
    labels = np.array([r["prediction"] for r in rows], dtype=object)
    probs = [k for k in rows[0] if k.startswith("prob_")]
    proba = np.array([[r[k] for k in probs] for r in rows], dtype=np.float64) if probs else None
    return labels, proba, probs


def lead_inputs(df, model):
    """The lead table in every shape the package takes."""
    names = model.feature_names
    levels = {f["name"]: f["kind"]["categorical"]["levels"] for f in model.signature["features"]
              if isinstance(f["kind"], dict)}
    matrix = np.column_stack([
        df[n].map({lvl: i for i, lvl in enumerate(levels[n])}).to_numpy(np.float64) if n in levels
        else df[n].to_numpy(np.float64)
        for n in names
    ])
    table = pa.Table.from_pandas(df, preserve_index=False)
    categorical = df.astype({n: "category" for n in levels})
    return {
        "pandas": df,
        "pandas-category": categorical,
        "pandas-reordered": df[list(reversed(df.columns))],
        "numpy-object": df[names].to_numpy(dtype=object),
        "numpy-level-indices": matrix,
        "pyarrow-table": table,
        "pyarrow-recordbatch": table.to_batches(max_chunksize=len(df))[0],
        "pyarrow-dictionary": pa.Table.from_pandas(categorical, preserve_index=False),
        "dict-of-columns": {n: df[n].tolist() for n in df.columns},
        "list-of-dicts": df.to_dict(orient="records"),
    }


@pytest.mark.parametrize("name", ["lead", "lead-forest"])
@pytest.mark.parametrize("shape", [
    "pandas", "pandas-category", "pandas-reordered", "numpy-object", "numpy-level-indices", "pyarrow-table",
    "pyarrow-recordbatch", "pyarrow-dictionary", "dict-of-columns", "list-of-dicts",
])
def test_classifier_matches_cli_bit_for_bit(models, lead_df, name, shape):
    model = wharf.load(models["file"][name])
    X = lead_inputs(lead_df, model)[shape]
    labels, proba, prob_columns = expected(models, name)
    got = model.predict_proba(X)
    assert got.dtype == np.float64 and got.shape == proba.shape
    # Bit for bit: the same float64s, not merely close ones.
    assert np.array_equal(got.view(np.uint64), proba.view(np.uint64))
    assert list(model.predict(X)) == list(labels)
    frame = model.predict_proba(X, as_frame=True)
    assert list(frame.columns) == prob_columns
    assert np.array_equal(frame.to_numpy(), proba)


@pytest.mark.parametrize("shape", ["pandas", "numpy", "pyarrow", "dict", "rows"])
def test_regressor_matches_cli_bit_for_bit(models, diabetes_df, shape):
    model = wharf.load(models["file"]["diabetes"])
    X = {
        "pandas": diabetes_df,
        "numpy": diabetes_df.to_numpy(np.float64),
        "pyarrow": pa.Table.from_pandas(diabetes_df, preserve_index=False),
        "dict": {n: diabetes_df[n].to_numpy() for n in diabetes_df.columns},
        "rows": diabetes_df.to_dict(orient="records"),
    }[shape]
    values = np.array([r["prediction"] for r in models["expected"]["diabetes"]], dtype=np.float64)
    got = model.predict(X)
    assert got.dtype == np.float64
    assert np.array_equal(got.view(np.uint64), values.view(np.uint64))


def test_an_all_numeric_frame_is_copied_out_whole_with_the_column_by_column_rules(models, diabetes_df):
    """A frame of plain numeric columns takes the one-pass copy: any column order, integer
    columns and NaN give what the matrix in signature order gives; a nullable column takes
    the column-by-column path and agrees too."""
    model = wharf.load(models["file"]["diabetes"])
    names = model.feature_names
    frame = diabetes_df[names[::-1]].copy()
    frame[names[0]] = (frame[names[0]] * 1000).round().astype("int64")
    frame.iloc[3, 2] = np.nan
    matrix = frame[names].to_numpy(np.float64)
    assert wharf._convert._pandas_numeric(frame, list(frame.columns), wharf._convert._features(model.signature)) is not None
    assert np.array_equal(model.predict(frame), model.predict(matrix), equal_nan=True)
    nullable = frame.astype({names[0]: "Int64"})
    assert wharf._convert._pandas_numeric(nullable, list(nullable.columns), wharf._convert._features(model.signature)) is None
    assert np.array_equal(model.predict(nullable), model.predict(matrix), equal_nan=True)
    with pytest.raises(wharf.SignatureError, match="unexpected column"):
        model.predict(frame.assign(extra=1.0))


def test_registry_alias_and_metadata(models):
    model = wharf.Registry(models["registry"]).load("lead@champion")
    assert model.task == "classification"
    assert model.classes == ["no", "yes"]
    assert model.signature["target"] == "converted"
    assert model.feature_names[0] == "source"
    assert model.metadata["algorithm"] == "logistic"
    assert wharf.Registry(models["registry"]).load("lead@1").metadata == model.metadata


def test_single_row_and_empty_input(models, lead_df):
    model = wharf.load(models["file"]["lead"])
    _, proba, _ = expected(models, "lead")
    one = model.predict_proba(lead_df.iloc[[3]])
    assert np.array_equal(one, proba[3:4])
    empty = model.predict_proba(lead_df.iloc[[]])
    assert empty.shape == (0, 2)


def test_missing_numbers_are_imputed_alike_in_every_shape(models, lead_df):
    model = wharf.load(models["file"]["lead"])
    df = lead_df.iloc[:50].copy()
    df.loc[[3, 9], "pages_viewed"] = np.nan
    rows = df.to_dict(orient="records")
    for r in rows:
        if r["pages_viewed"] != r["pages_viewed"]:
            r["pages_viewed"] = None  # JSON null: Wharf's own missing value
    want = model.predict_proba(rows)
    assert np.array_equal(model.predict_proba(df), want)
    assert np.array_equal(model.predict_proba(pa.Table.from_pandas(df, preserve_index=False)), want)
    assert not np.array_equal(want[3], model.predict_proba(lead_df.iloc[[3]])[0])


@pytest.fixture(scope="module")
def numeric_classifiers(cli, data_dir):
    """All-numeric binary classifiers, which score a matrix through the compiled kernels
    (the folded logistic regression, the perfect-tree forest) rather than the general path."""
    csv = str(data_dir / "breast_cancer.csv")
    out = {}
    for name, algorithm in [("bc-logistic", "logistic"), ("bc-forest", "random-forest")]:
        cli("train", "-i", csv, "-t", "diagnosis", "--id", "id", "-a", algorithm, "-n", name, "-q")
        out[name] = cli.work / "wharf-registry" / name / "versions" / "1" / "model.wharf"
    return out


@pytest.mark.parametrize("name", ["bc-logistic", "bc-forest"])
def test_every_layout_scores_bit_for_bit_and_float64_input_is_lent_not_copied(numeric_classifiers, data_dir, name):
    """C-order, Fortran-order, sliced and reversed float64 arrays and a DataFrame give the
    same bits; the float64 ones, the frame's block included, reach the native side as
    themselves (no copy on the Python side; the native side borrows them)."""
    model = wharf.load(numeric_classifiers[name])
    names = model.feature_names
    df = pd.read_csv(data_dir / "breast_cancer.csv")[names]
    c_order = np.ascontiguousarray(df.to_numpy(np.float64))
    c_order[::13, 3] = np.nan  # missing values: re-scored rows in the logistic kernel
    f_order = np.asfortranarray(c_order)
    tall = np.full((2 * len(c_order), len(names)), np.inf)
    tall[::2] = c_order
    frame = pd.DataFrame(f_order, columns=names, copy=False)
    want = model.predict_proba(c_order)
    assert want.shape == (len(c_order), 2)
    shapes = {
        "fortran": f_order,
        "every-other-row": tall[::2],
        "dataframe": frame,
        "dataframe-reordered": frame[names[::-1]],
    }
    for shape, X in shapes.items():
        got = model.predict_proba(X)
        assert np.array_equal(got.view(np.uint64), want.view(np.uint64)), shape
    # Negative strides: the rows read bottom up, the answers in that order.
    backwards = model.predict_proba(f_order[::-1])
    assert np.array_equal(backwards[::-1].view(np.uint64), want.view(np.uint64))
    assert not f_order.flags.c_contiguous and not tall[::2].flags.c_contiguous
    features = wharf._convert._features(model.signature)
    for X in (c_order, f_order, tall[::2], f_order[::-1]):
        kind, (lent,) = wharf._convert.prepare_features(X, features)
        assert kind == "matrix" and lent is X
    kind, (lent,) = wharf._convert.prepare_features(frame, features)
    assert kind == "matrix" and np.shares_memory(lent, f_order)
