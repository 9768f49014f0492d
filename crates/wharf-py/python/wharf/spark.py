"""Scoring Spark DataFrames with a Wharf model, through ``DataFrame.mapInArrow``.

``predict_udf`` returns the function and the output schema; each Python worker loads the
model once (a module-level cache) and scores every Arrow batch with the pyarrow path of
:meth:`wharf.Model.predict_proba`, so no row goes through pandas or Python objects.

The model is read from a path every executor can see: a ``.wharf`` file, or a file
registry directory with a reference (``lead@champion``). On a cluster without a shared
file system, ship the file with ``spark.sparkContext.addFile(path)`` and pass
``spark_file=True`` (the workers then read ``SparkFiles.get(name)``).
"""

from __future__ import annotations

import os
import threading

from . import Model, Registry, load, prob_column

_cache: dict = {}
_lock = threading.Lock()


def _model(source, reference, spark_file) -> Model:
    key = (source, reference, spark_file)
    with _lock:
        model = _cache.get(key)
        if model is None:
            if spark_file:
                from pyspark import SparkFiles

                model = load(SparkFiles.get(os.path.basename(source)))
            elif reference is None:
                model = load(source)
            else:
                model = Registry(source).load(reference)
            _cache[key] = model
        return model


def predict_udf(spark, model, *, registry="wharf-registry", keep=(), spark_file=False):
    """``(function, schema)`` for ``df.mapInArrow(function, schema)``.

    ``model`` is a ``.wharf`` path or a reference in ``registry`` (``NAME``, ``NAME@3``,
    ``NAME@champion``). The output has the ``keep`` columns (ids, copied through as text), then
    ``prediction``, then one ``prob_<class>`` column per class for a classifier: the
    columns ``wharf score`` writes.
    """
    if str(model).endswith(".wharf"):
        source, reference = os.fspath(model), None
    else:
        source, reference = os.fspath(registry), str(model)
    if spark_file:
        if reference is not None:
            raise ValueError("spark_file=True ships one .wharf file: pass its path as model")
        spark.sparkContext.addFile(source)
    on_driver = _model(source, reference, spark_file)
    names = on_driver.feature_names
    task, classes = on_driver.task, on_driver.classes
    keep = list(keep)

    def score(batches):
        import numpy as np
        import pyarrow as pa

        scorer = _model(source, reference, spark_file)
        for batch in batches:
            features = batch.select(names)
            columns = [batch.column(k).cast(pa.string()) for k in keep]
            # One pass, as `wharf score` does: the label is the most probable class.
            predictions, proba = scorer._score(features)
            if task == "classification":
                labels = np.asarray(classes, dtype=object)[predictions]
                columns.append(pa.array(labels, type=pa.string()))
                columns.extend(pa.array(proba[:, i]) for i in range(len(classes)))
            elif task == "regression":
                columns.append(pa.array(predictions, type=pa.float64()))
            else:
                columns.append(pa.array(predictions, type=pa.int32()))
            yield pa.RecordBatch.from_arrays(columns, names=keep + _outputs(task, classes))

    return score, _schema(keep, task, classes)


def _outputs(task, classes):
    if task == "classification":
        return ["prediction"] + [prob_column(c) for c in classes]
    return ["prediction"]


def _schema(keep, task, classes):
    kept = [f"`{k}` string" for k in keep]
    if task == "classification":
        out = ["`prediction` string"] + [f"`{prob_column(c)}` double" for c in classes]
    elif task == "regression":
        out = ["`prediction` double"]
    else:
        out = ["`prediction` int"]
    return ", ".join(kept + out)
