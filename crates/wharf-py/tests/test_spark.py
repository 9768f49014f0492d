"""`wharf.spark.predict_udf` with PySpark in local mode: the Spark output equals the
`wharf` CLI's, row for row and bit for bit. Runs where pyspark and a Java runtime are
installed (`cargo xtask python` with `WHARF_TEST_SPARK=1`); says `skipped:` otherwise."""

import os
import shutil

import numpy as np
import pytest


@pytest.fixture(scope="module")
def spark():
    if not os.environ.get("WHARF_TEST_SPARK"):
        pytest.skip("skipped: WHARF_TEST_SPARK not set (pyspark and Java are installed only then)")
    try:
        import pyspark  # noqa: F401
    except ImportError:
        pytest.fail("WHARF_TEST_SPARK is set but pyspark is not installed")
    if not shutil.which("java") and not os.environ.get("JAVA_HOME"):
        pytest.fail("WHARF_TEST_SPARK is set but no Java runtime is installed")
    import sys

    from pyspark.sql import SparkSession

    # The workers run this venv's Python (the one with the package), as a cluster's would run
    # the environment shipped with the job.
    os.environ["PYSPARK_PYTHON"] = sys.executable

    session = (
        SparkSession.builder.master("local[2]")
        .appName("wharf-test")
        .config("spark.ui.enabled", "false")
        .config("spark.sql.shuffle.partitions", "2")
        .getOrCreate()
    )
    yield session
    session.stop()


def test_spark_scores_like_the_cli(spark, models, data_dir):
    import wharf.spark

    df = spark.read.csv(str(data_dir / "lead_scoring.csv"), header=True, inferSchema=True).repartition(3)
    score, schema = wharf.spark.predict_udf(spark, "lead@champion", registry=str(models["registry"]), keep=["lead_id"])
    rows = df.mapInArrow(score, schema).toPandas().sort_values("lead_id").reset_index(drop=True)
    expected = models["expected"]["lead"]
    assert len(rows) == len(expected)
    assert list(rows["prediction"]) == [r["prediction"] for r in expected]
    want = np.array([[r["prob_no"], r["prob_yes"]] for r in expected])
    assert np.array_equal(rows[["prob_no", "prob_yes"]].to_numpy(), want)


def test_spark_ships_a_model_file(spark, models, data_dir):
    import wharf.spark

    df = spark.read.csv(str(data_dir / "diabetes.csv"), header=True, inferSchema=True).drop("progression")
    score, schema = wharf.spark.predict_udf(spark, str(models["file"]["diabetes"]), spark_file=True)
    got = df.coalesce(1).mapInArrow(score, schema).toPandas()["prediction"].to_numpy()
    want = np.array([r["prediction"] for r in models["expected"]["diabetes"]])
    assert np.array_equal(got, want)
