"""Bad input raises a Python exception naming the column: never a crash or a Rust panic."""

import shutil

import numpy as np
import pandas as pd
import pytest

import wharf


@pytest.fixture(scope="module")
def lead(models):
    return wharf.load(models["file"]["lead"])


@pytest.fixture(params=[20, None], ids=["20-rows", "1200-rows"])
def df(data_dir, request):
    # Both sizes: small frames look levels up cell by cell, large ones through pandas.
    return pd.read_csv(data_dir / "lead_scoring.csv", nrows=request.param).drop(columns=["lead_id", "converted"])


def raises_on(model, X, column, row=None, match=None):
    with pytest.raises(wharf.SignatureError, match=match) as info:
        model.predict_proba(X)
    assert info.value.column == column, str(info.value)
    if row is not None:
        assert info.value.row == row, str(info.value)
    assert column in str(info.value)
    return info.value


def test_missing_column(lead, df):
    raises_on(lead, df.drop(columns=["industry"]), "industry", match="missing column 'industry'")


def test_extra_column(lead, df):
    raises_on(lead, df.assign(lead_id="L1"), "lead_id", match="unexpected column 'lead_id'")


def test_misspelt_column_names_both(lead, df):
    err = raises_on(lead, df.rename(columns={"industry": "industy"}), "industry")
    assert "industy" in str(err) and "misspelt" in str(err)


def test_text_in_numeric_column(lead, df):
    df["pages_viewed"] = df["pages_viewed"].astype(object)
    df.loc[4, "pages_viewed"] = "many"
    raises_on(lead, df, "pages_viewed", row=4, match="not a number")


def test_string_dtype_in_numeric_column(lead, df):
    raises_on(lead, df.astype({"pages_viewed": str}), "pages_viewed", row=0)


def test_floats_in_categorical_column(lead, df):
    raises_on(lead, df.assign(industry=1.5), "industry", match="floats")


def test_boolean_column(lead, df):
    raises_on(lead, df.assign(pages_viewed=True), "pages_viewed", match="boolean")


def test_nan_in_categorical(lead, df):
    df.loc[7, "industry"] = np.nan
    raises_on(lead, df, "industry", row=7, match="missing value")


def test_mixed_object_column(lead, df):
    df["source"] = df["source"].astype(object)
    df.loc[2, "source"] = 42
    raises_on(lead, df, "source", row=2, match="mixes types")


def test_unknown_level_is_refused_by_the_model(lead, df):
    df.loc[5, "industry"] = "astrology"
    err = raises_on(lead, df, "industry", row=5)
    assert "astrology" in str(err)


def test_list_of_dicts_with_a_misspelt_field(lead, df):
    rows = df.to_dict(orient="records")
    rows[1]["industy"] = rows[1].pop("industry")
    with pytest.raises(wharf.SignatureError) as info:
        lead.predict(rows)
    assert info.value.row == 1
    assert "industry" in str(info.value) or "industy" in str(info.value)


def test_numpy_wrong_width(lead):
    with pytest.raises(wharf.SignatureError, match="columns"):
        lead.predict(np.zeros((3, 2)))


def test_unsupported_input_type(lead):
    with pytest.raises(TypeError, match="cannot score"):
        lead.predict("source=organic")


def test_probabilities_of_a_regressor(models):
    with pytest.raises(wharf.UnsupportedError):
        wharf.load(models["file"]["diabetes"]).predict_proba(np.zeros((1, 10)))


def test_newer_format_is_refused_with_the_versions(models, tmp_path):
    data = bytearray(models["file"]["lead"].read_bytes())
    newer = wharf.FORMAT_VERSION + 1
    data[8:10] = newer.to_bytes(2, "little")
    path = tmp_path / "newer.wharf"
    path.write_bytes(bytes(data))
    with pytest.raises(wharf.ArtifactError) as info:
        wharf.load(path)
    assert f"format version {newer}" in str(info.value)
    assert f"reads up to {wharf.FORMAT_VERSION}" in str(info.value)


def test_damaged_and_foreign_files(models, tmp_path):
    damaged = tmp_path / "damaged.wharf"
    data = bytearray(models["file"]["lead"].read_bytes())
    data[-1] ^= 0xFF
    damaged.write_bytes(bytes(data))
    with pytest.raises(wharf.ArtifactError):
        wharf.load(damaged)
    foreign = tmp_path / "model.pkl"
    foreign.write_bytes(b"\x80\x04\x95 not a wharf model")
    with pytest.raises(wharf.ArtifactError, match="magic"):
        wharf.load(foreign)


def test_not_found(models, tmp_path):
    with pytest.raises(wharf.NotFoundError):
        wharf.load(tmp_path / "absent.wharf")
    with pytest.raises(wharf.NotFoundError):
        wharf.Registry(models["registry"]).load("lead@challenger")
    with pytest.raises(wharf.WharfError, match="not a valid model name"):
        wharf.Registry(models["registry"]).load("no such name")


def test_a_panic_stops_at_the_boundary():
    from wharf import _wharf

    with pytest.raises(wharf.InternalError, match="deliberate panic"):
        _wharf._panic_for_test()


def test_every_error_is_a_wharf_error():
    for cls in (wharf.SignatureError, wharf.ArtifactError, wharf.NotFoundError, wharf.UnsupportedError,
                wharf.BackendError, wharf.InternalError):
        assert issubclass(cls, wharf.WharfError)
