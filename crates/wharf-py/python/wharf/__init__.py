"""Score Wharf models from Python.

``wharf.load("model.wharf")`` or ``wharf.Registry("wharf-registry").load("lead@champion")``
gives a :class:`Model`; its ``predict`` and ``predict_proba`` take a pandas DataFrame, a
NumPy 2-D array, a pyarrow Table or RecordBatch, a dict of columns or a list of dicts.
Scoring runs in Rust, through the same scoring path as the ``wharf`` CLI and server, with
the GIL released.
"""

from __future__ import annotations

import json
import os

import numpy as np

from . import _wharf
from ._convert import _features, prepare_features
from ._wharf import (
    FORMAT_VERSION,
    ArtifactError,
    BackendError,
    InternalError,
    NotFoundError,
    SignatureError,
    UnsupportedError,
    WharfError,
)

__version__ = _wharf.__version__

__all__ = [
    "FORMAT_VERSION",
    "ArtifactError",
    "BackendError",
    "InternalError",
    "Model",
    "NotFoundError",
    "Registry",
    "SignatureError",
    "UnsupportedError",
    "WharfError",
    "import_model",
    "load",
]


def prob_column(label: str) -> str:
    """The name of the column holding P(label): the same rule as the CLI's output."""
    return f"prob_{label}"


class Model:
    """A loaded Wharf model. Thread-safe: share one instance between threads."""

    def __init__(self, native: _wharf.Model):
        self._native = native
        self._signature = json.loads(native.signature_json)
        self._classes = list(native.classes)
        self._labels = np.asarray(self._classes, dtype=object)
        self._task = native.task
        self._width = len(self._signature["features"])
        self._features = _features(self._signature)

    def __repr__(self) -> str:
        return f"<wharf.Model {self.metadata.get('algorithm', '?')} {self.task} features={self.feature_names}>"

    @property
    def signature(self) -> dict:
        """Features (name and kind, in matrix order), target, task and classes."""
        return json.loads(self._native.signature_json)

    @property
    def classes(self) -> list:
        """Class labels, sorted; probability column ``i`` is ``P(classes[i])``."""
        return list(self._classes)

    @property
    def task(self) -> str:
        """``classification``, ``regression`` or ``clustering``."""
        return self._task

    @property
    def metadata(self) -> dict:
        """Everything the artifact records besides the parameters."""
        return json.loads(self._native.metadata_json)

    @property
    def feature_names(self) -> list:
        """The input columns, in the order a NumPy matrix must follow."""
        return [f["name"] for f in self._signature["features"]]

    def _score(self, X):
        # The common hot case, a float64 row or matrix of the right width, skips the dispatch.
        if type(X) is np.ndarray and X.dtype == np.float64 and X.ndim == 2 and X.shape[1] == self._width:
            return self._native.score_matrix(X)
        kind, args = prepare_features(X, self._features)
        if kind == "matrix":
            return self._native.score_matrix(*args)
        return self._native.score_rows(*args)

    def predict(self, X) -> np.ndarray:
        """One prediction per row: class labels (object array) for a classifier, float64
        values for a regressor, cluster indices for a clustering model."""
        predictions, _ = self._score(X)
        if self._task == "classification":
            return self._labels[predictions]
        return predictions

    def predict_proba(self, X, *, as_frame: bool = False):
        """Class probabilities, one row per record and one column per class (in
        :attr:`classes` order). ``as_frame=True`` gives a pandas DataFrame with
        ``prob_<class>`` columns (and the input's index, for a DataFrame input)."""
        if self._task != "classification":
            raise UnsupportedError(f"a {self._task} model has no class probabilities")
        _, proba = self._score(X)
        if proba is None:
            raise UnsupportedError("this model server gives no class probabilities")
        if not as_frame:
            return proba
        import pandas as pd

        index = X.index if isinstance(X, pd.DataFrame) else None
        return pd.DataFrame(proba, columns=[prob_column(c) for c in self._classes], index=index)


def load(path) -> Model:
    """Loads a ``.wharf`` file. Damaged files and files of a newer format are refused
    (:class:`ArtifactError`, naming the versions)."""
    return Model(_wharf.load(os.fspath(path)))


def import_model(format: str, path, *, features=None, classes=None) -> Model:
    """Imports a model another library saved, as ``wharf models import`` does:
    ``"xgboost"`` (``save_model`` JSON) or ``"lightgbm"`` (``save_model`` text).
    ``features`` and ``classes`` name what the file does not (a booster trained on a bare
    array, labels other than ``0..k-1``). The model scores without XGBoost or LightGBM."""
    return Model(
        _wharf.import_model(
            format,
            os.fspath(path),
            None if features is None else [str(f) for f in features],
            None if classes is None else [str(c) for c in classes],
        )
    )


class Registry:
    """A file model registry (the directory ``wharf train`` registers into, by default
    ``./wharf-registry``)."""

    def __init__(self, root="wharf-registry"):
        root = os.fspath(root)
        if root.startswith(("http://", "https://", "databricks")):
            raise UnsupportedError(
                f"{root}: an MLflow registry is read with mlflow.pyfunc.load_model('models:/NAME/VERSION'); "
                "wharf.Registry reads a file registry directory"
            )
        self.root = root

    def __repr__(self) -> str:
        return f"wharf.Registry({self.root!r})"

    def load(self, reference: str) -> Model:
        """``NAME`` (latest version), ``NAME@VERSION`` or ``NAME@ALIAS``."""
        return Model(_wharf.load_registered(self.root, reference))
