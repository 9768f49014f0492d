"""MLflow's ``python_function`` flavor for Wharf models.

A model that Wharf logs to MLflow carries, next to its ``wharf`` flavor, a
``python_function`` flavor whose ``loader_module`` is this module, so
``mlflow.pyfunc.load_model("models:/lead/1")`` works wherever this package is installed.
"""

from __future__ import annotations

import os

from . import Model, load

#: The artifact's file name inside a logged model's directory.
MODEL_FILE = "model.wharf"


class WharfPyfuncModel:
    """What ``mlflow.pyfunc.load_model`` wraps: ``predict`` gives the labels (classifiers),
    values (regressors) or clusters, exactly as ``wharf.Model.predict``."""

    def __init__(self, model: Model):
        self.model = model

    def predict(self, data, params=None):
        return self.model.predict(data)

    def predict_proba(self, data):
        return self.model.predict_proba(data, as_frame=True)


def _load_pyfunc(path: str) -> WharfPyfuncModel:
    """MLflow's loader hook: ``path`` is the flavor's ``data`` (the ``.wharf`` file), or the
    model directory holding it."""
    if os.path.isdir(path):
        path = os.path.join(path, MODEL_FILE)
    return WharfPyfuncModel(load(path))
