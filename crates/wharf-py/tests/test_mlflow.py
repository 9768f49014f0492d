"""MLflow's python_function flavor, against the real MLflow server `cargo xtask backends`
starts: a model logged and registered by the `wharf` CLI loads with MLflow's own client and
predicts what Wharf predicts."""

import json
import os
import uuid

import numpy as np
import pandas as pd
import pytest

URI = os.environ.get("WHARF_TEST_MLFLOW_URI")


@pytest.fixture(scope="module")
def registered(cli, data_dir, models):
    if not URI:
        if os.environ.get("WHARF_TEST_REQUIRE_BACKENDS"):
            pytest.fail("WHARF_TEST_MLFLOW_URI not set")
        pytest.skip("skipped: WHARF_TEST_MLFLOW_URI not set")
    name = f"lead-py-{uuid.uuid4().hex[:8]}"
    env = {
        "WHARF_TRACKING__BACKEND": "mlflow",
        "WHARF_TRACKING__MLFLOW__URI": URI,
        "WHARF_REGISTRY__BACKEND": "mlflow",
    }
    cli("train", "-i", str(data_dir / "lead_scoring.csv"), "-t", "converted", "--id", "lead_id", "-n", name, "-q",
        env=env)
    target = cli.work / f"{name}.jsonl"
    cli("predict", "-m", name, "-i", str(data_dir / "lead_scoring.csv"), "-o", str(target), "-q", env=env)
    with open(target) as f:
        return name, [json.loads(line) for line in f]


def test_pyfunc_load_model_predicts_what_wharf_predicts(registered, data_dir):
    import mlflow.pyfunc

    name, expected = registered
    mlflow.set_tracking_uri(URI)
    model = mlflow.pyfunc.load_model(f"models:/{name}/1")
    df = pd.read_csv(data_dir / "lead_scoring.csv").drop(columns=["lead_id", "converted"])
    got = model.predict(df)
    assert list(np.asarray(got)) == [r["prediction"] for r in expected]
    # The loaded object is the package's own wrapper, so probabilities come bit for bit too.
    from wharf.pyfunc import WharfPyfuncModel

    impl = model._model_impl
    assert isinstance(impl, WharfPyfuncModel)
    proba = impl.predict_proba(df)
    assert list(proba.columns) == ["prob_no", "prob_yes"]
    want = np.array([[r["prob_no"], r["prob_yes"]] for r in expected])
    assert np.array_equal(proba.to_numpy(), want)
