"""Classical baselines on the task's own split: what a cross-modal model has to beat to be worth its cost.

Keys are the same for every task, so one results table has one column per baseline:
- ``majority``: the train split's majority class (classification), label prevalences (multilabel), or
  the mean training field (dense);
- ``logreg``: logistic regression (classification, one per label for multilabel), ridge regression
  for dense targets;
- ``1nn``: the nearest training sample's label or field (Euclidean).
All fit on the flattened, standardised training inputs and are scored on the test split with the
task's own metric. ``majority`` is the trivial one: a run that does not beat it learned nothing from its
inputs (:func:`degenerate`). Results are cached under ``$PARE_DATA/baselines`` by a hash of the arrays: every
``fit`` reports them, and sweeps run many trials on the same split.
"""

from __future__ import annotations

import hashlib
import json
import math
from typing import Any, Mapping

import numpy as np

from pare_core.cache import atomic_path, data_root
from pare_core.tasks.base import TaskData

VERSION = 1  # bump when a baseline changes, to invalidate cached results
TRIVIAL = "majority"  # the baseline that ignores the inputs
TRIVIAL_KEY = f"baseline/{TRIVIAL}"  # how a run reports it, beside its ``test_error`` (``pare_core.train``)


def baselines(data: TaskData) -> dict[str, float]:
    """``{"majority": e, "logreg": e, "1nn": e}``: test errors in the task's metric (lower is better)."""
    path = data_root() / "baselines" / f"{data.spec.name}-{_fingerprint(data)}.json"
    if path.exists():
        return json.loads(path.read_text())
    import torch  # here, not at the top: analysis reads :func:`degenerate` without torch
    from threadpoolctl import threadpool_limits

    from pare_core.metrics import evaluate

    with threadpool_limits(limits=1):  # BLAS threads of numpy, scipy and torch fight on small CPUs: 20x slower
        predictions = _predict(data)
    result = {
        name: evaluate(data.spec, torch.as_tensor(pred), torch.as_tensor(data.y_test))["error"]
        for name, pred in predictions.items()
    }
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(result))
    return result


def degenerate(final: Mapping[str, Any]) -> bool:
    """Whether a finished run's ``test_error`` does not beat the trivial baseline scored on the same test
    split (``baseline/majority``, both in a run's last report): the run predicts no better than the
    majority class, or the mean field, so it says nothing about its method, and a mean over such runs
    reads as a result that is not one (two arms whose every seed stays at the majority class "tie").
    False while either value is missing (the run has not ended)."""
    error, trivial = final.get("test_error"), final.get(TRIVIAL_KEY)
    numbers = all(
        isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in (error, trivial)
    )
    return bool(numbers and error >= trivial)


def _fingerprint(data: TaskData) -> str:
    digest = hashlib.sha1(f"{VERSION}{data.spec}".encode())
    for array in (data.x_train, data.y_train, data.x_test, data.y_test):
        digest.update(np.ascontiguousarray(array).tobytes())
    return digest.hexdigest()[:16]


def _predict(data: TaskData) -> dict[str, np.ndarray]:
    """Raw outputs of the three baselines on the test inputs, shaped like the model's outputs."""
    from sklearn.linear_model import LogisticRegression, Ridge
    from sklearn.neighbors import NearestNeighbors

    spec = data.spec
    x_train = data.x_train.reshape(len(data.x_train), -1).astype(np.float64)
    x_test = data.x_test.reshape(len(data.x_test), -1).astype(np.float64)
    nearest = NearestNeighbors(n_neighbors=1).fit(x_train).kneighbors(x_test, return_distance=False)[:, 0]
    n_test = len(x_test)
    if spec.kind == "classification":
        y = data.y_train
        counts = np.bincount(y, minlength=spec.n_outputs)
        majority = np.tile(np.eye(spec.n_outputs)[counts.argmax()], (n_test, 1))
        model = LogisticRegression(max_iter=1000).fit(x_train, y)
        logreg = np.full((n_test, spec.n_outputs), -1e9)  # classes absent from train: never predicted
        logreg[:, model.classes_] = model.predict_log_proba(x_test)
        return {"majority": majority, "logreg": logreg, "1nn": np.eye(spec.n_outputs)[y[nearest]]}
    y = data.y_train.reshape(len(data.y_train), -1).astype(np.float64)
    shape = (n_test, *data.y_train.shape[1:])
    majority = np.tile(y.mean(0), (n_test, 1))
    if spec.kind == "multilabel":
        linear = np.stack([_label_logits(x_train, y[:, j], x_test) for j in range(y.shape[1])], axis=1)
    else:
        linear = Ridge(alpha=1.0).fit(x_train, y).predict(x_test)
    return {"majority": majority.reshape(shape), "logreg": linear.reshape(shape), "1nn": y[nearest].reshape(shape)}


def _label_logits(x_train: np.ndarray, y: np.ndarray, x_test: np.ndarray) -> np.ndarray:
    """One label's logistic-regression logits; a label with one class in train predicts that class."""
    from sklearn.linear_model import LogisticRegression

    if y.min() == y.max():
        return np.full(len(x_test), 1.0 if y[0] > 0.5 else -1.0)
    return LogisticRegression(max_iter=1000).fit(x_train, y > 0.5).decision_function(x_test)
