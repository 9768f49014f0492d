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


def lead_floats(data_dir):
    """The lead table as MLflow's schema wants it: its `double` inputs refuse int64 columns
    ("can not safely convert"), so the whole-number columns are cast to float64."""
    df = pd.read_csv(data_dir / "lead_scoring.csv").drop(columns=["lead_id", "converted"])
    return df.astype({c: "float64" for c in df.columns if pd.api.types.is_integer_dtype(df[c])})


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
    df = lead_floats(data_dir)
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


def test_the_model_names_its_python_requirement(registered):
    """MLflow's own helper finds the requirement the pyfunc flavor needs, pinned to the
    version of Wharf that logged the model."""
    import mlflow.pyfunc

    import wharf

    name, _ = registered
    mlflow.set_tracking_uri(URI)
    path = mlflow.pyfunc.get_model_dependencies(f"models:/{name}/1")
    with open(path) as f:
        requirements = [line.strip() for line in f if line.strip()]
    assert requirements == [f"wharf-models=={wharf.__version__}"]


def test_mlflow_models_serve_answers_invocations(registered, data_dir, tmp_path):
    """`mlflow models serve --env-manager local` in this venv (which has the package)."""
    import shutil
    import signal
    import socket
    import subprocess
    import sys
    import time
    import urllib.request
    from pathlib import Path

    name, expected = registered
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    mlflow_cli = Path(sys.executable).with_name("mlflow")
    assert mlflow_cli.exists() or shutil.which("mlflow"), "mlflow's command is not installed beside this Python"
    log = open(tmp_path / "serve.log", "w")
    server = subprocess.Popen(
        [str(mlflow_cli), "models", "serve", "-m", f"models:/{name}/1", "--env-manager", "local",
         "--host", "127.0.0.1", "--port", str(port), "--workers", "1"],
        # MLflow starts its server as `uvicorn` from PATH: this venv's, as an activated venv would.
        env={**os.environ, "MLFLOW_TRACKING_URI": URI, "PATH": f"{mlflow_cli.parent}{os.pathsep}{os.environ['PATH']}"},
        stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/ping", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if server.poll() is not None or time.monotonic() > deadline:
                log.flush()
                pytest.fail(f"mlflow models serve did not come up:\n{(tmp_path / 'serve.log').read_text()[-3000:]}")
            time.sleep(0.5)
        df = lead_floats(data_dir).iloc[:200]
        body = json.dumps({"dataframe_split": df.to_dict(orient="split")}).encode()
        request = urllib.request.Request(f"http://127.0.0.1:{port}/invocations", data=body,
                                         headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=60) as r:
            answer = json.loads(r.read())
        assert answer["predictions"] == [r["prediction"] for r in expected[:200]]
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()
        log.close()
