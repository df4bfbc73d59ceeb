"""Every task on its real data: shapes, label ranges, disjoint seeded splits, train-only standardisation,
determinism, baselines; plus the registry, the missing-package errors and the generators' physics.

Data comes from the real packages and is cached under $PARE_DATA like in any run (the first run
generates the PDE and cosmic-ray sets: about 20 s).
"""

import functools
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
from sklearn.metrics import f1_score
from test_task_fits import BUDGET as FITS_BUDGET

from pare_core.config import TaskConfig, TrialConfig
from pare_core.tasks import TASKS, load_task, task_spec
from pare_core.tasks.baselines import baselines
from pare_core.tasks.burgers import generate as generate_burgers
from pare_core.tasks.burgers import solve_burgers
from pare_core.tasks.common import MissingDataError, stratified_pick
from pare_core.tasks.cosmic import SIZE, TEST_COLUMN
from pare_core.tasks.images import equiangular_grid, project_to_sphere, random_rotation

NAMES = list(TASKS)
KINDS = {"classification", "multilabel", "dense"}
LOSSES = {"classification": {"ce"}, "multilabel": {"bce"}, "dense": {"bce", "mse", "rel_l2"}}


@functools.lru_cache(maxsize=None)
def data(name: str, seed: int = 0):
    return load_task(TaskConfig(name=name), seed)


def stat_axes(task) -> tuple[int, ...]:
    x = task.x_train
    return (0, *range(2, x.ndim)) if task.extras["standardise"]["stats"] == "channel" else (0,)


def test_registry_is_large_and_varied():
    specs = [task_spec(name) for name in NAMES]
    assert len(specs) >= 10 and len({s.modality for s in specs}) >= 4
    assert NAMES[:2] == ["digits", "dna"] and TaskConfig().name == "digits"
    assert all(s.stands_in_for for s in specs)


def test_listing_tasks_imports_neither_torch_nor_data_libraries():
    code = (
        "import sys; from pare_core.tasks import TASKS, task_spec; [task_spec(n) for n in TASKS]; "
        "heavy = [m for m in ('torch', 'sklearn', 'scipy', 'aeon', 'pyts', 'rdata', 'skimage') if m in sys.modules]; "
        "assert not heavy, heavy"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_unknown_task_names_the_allowed_ones():
    with pytest.raises(ValueError, match="task.name='imagenet'.*digits, dna"):
        task_spec("imagenet")


@pytest.mark.parametrize("name", NAMES)
def test_spec_and_arrays_agree(name):
    task = data(name)
    spec = task.spec
    assert spec == task_spec(name) and spec.name == name
    assert spec.kind in KINDS and spec.loss in LOSSES[spec.kind]
    assert len(spec.input_shape) == {"1d": 2, "2d": 3}[spec.layout]
    for x, y in ((task.x_train, task.y_train), (task.x_val, task.y_val), (task.x_test, task.y_test)):
        assert x.dtype == np.float32 and x.shape[1:] == spec.input_shape and np.isfinite(x).all()
        assert len(y) == len(x)
        if spec.kind == "classification":
            assert y.dtype == np.int64 and y.ndim == 1 and 0 <= y.min() and y.max() < spec.n_outputs
        else:
            assert y.dtype == np.float32 and np.isfinite(y).all()
            assert y.shape[1:] == (spec.output_shape if spec.kind == "dense" else (spec.n_outputs,))
    if spec.kind == "classification":
        assert len(np.unique(task.y_train)) == spec.n_outputs  # every class is seen in training
        assert not spec.class_names or len(spec.class_names) == spec.n_outputs
    if spec.loss == "bce":
        assert set(np.unique(task.y_train)) == {0.0, 1.0}


@pytest.mark.parametrize("name", NAMES)
def test_splits_are_disjoint_and_only_val_moves_with_the_seed(name):
    first, second = data(name, 0), data(name, 1)
    ids = first.extras["ids"]
    assert [len(ids[s]) for s in ("train", "val", "test")] == list(first.sizes)
    assert len(np.unique(np.concatenate([ids["train"], ids["val"], ids["test"]]))) == sum(first.sizes)
    assert np.array_equal(ids["test"], second.extras["ids"]["test"])  # the test split is fixed
    assert np.array_equal(
        np.sort(np.concatenate([ids["train"], ids["val"]])),
        np.sort(np.concatenate([second.extras["ids"]["train"], second.extras["ids"]["val"]])),
    )
    assert not np.array_equal(ids["val"], second.extras["ids"]["val"])  # the seed carves validation
    assert 0.1 < first.sizes[1] / (first.sizes[0] + first.sizes[1]) < 0.3  # default val_frac 0.2


@pytest.mark.parametrize("name", NAMES)
def test_standardisation_uses_training_statistics_only(name):
    first, second = data(name, 0), data(name, 1)
    axes = stat_axes(first)
    std = first.x_train.std(axis=axes, dtype=np.float64)
    varying = std > 1e-6  # constant features are left at 0
    assert np.allclose(first.x_train.mean(axis=axes, dtype=np.float64), 0.0, atol=1e-4)
    assert np.allclose(std[varying], 1.0, atol=1e-4)

    def raw(task, x):
        return x * task.extras["standardise"]["std"] + task.extras["standardise"]["mean"]

    # the same raw test inputs, scaled by statistics that differ with the (seeded) training split
    assert np.allclose(raw(first, first.x_test), raw(second, second.x_test), rtol=1e-4, atol=1e-4)
    stats = [
        np.concatenate([t.extras["standardise"]["mean"].ravel(), t.extras["standardise"]["std"].ravel()])
        for t in (first, second)
    ]
    assert not np.allclose(*stats, rtol=1e-6, atol=0)


@pytest.mark.parametrize("name", NAMES)
def test_same_seed_gives_the_same_arrays(name):
    again = load_task(TaskConfig(name=name), 0)
    first = data(name, 0)
    for field in ("x_train", "y_train", "x_val", "y_val", "x_test", "y_test"):
        assert np.array_equal(getattr(first, field), getattr(again, field)), field


@pytest.mark.parametrize("name", NAMES)
def test_trivial_baseline_matches_a_direct_computation(name):
    # on the test subset tests/test_task_fits.py scores, so the baselines' cache serves both files: on
    # spherical the logistic regression alone takes 13 CPU-s
    task = load_task(TaskConfig(name=name, max_test=FITS_BUDGET["task.max_test"]), 0)
    spec, result = task.spec, baselines(task)
    assert set(result) == {"majority", "logreg", "1nn"} and all(np.isfinite(v) for v in result.values())
    if spec.kind == "classification":
        majority = np.bincount(task.y_train).argmax()
        expected = {
            "accuracy": np.mean(task.y_test != majority),
            "auroc": 0.5,  # constant scores rank nothing
            "macro_f1": 1 - f1_score(task.y_test, np.full_like(task.y_test, majority), average="macro"),
        }[spec.metric]
    else:
        mean = task.y_train.mean(axis=0, dtype=np.float64)
        if spec.metric == "auroc":
            from sklearn.metrics import roc_auc_score

            expected = 1 - roc_auc_score(task.y_test.ravel(), np.broadcast_to(mean, task.y_test.shape).ravel())
        else:
            diff = (task.y_test - mean).reshape(len(task.y_test), -1)
            expected = np.mean(
                np.linalg.norm(diff, axis=1) / np.linalg.norm(task.y_test.reshape(len(diff), -1), axis=1)
            )
    assert result["majority"] == pytest.approx(expected, abs=1e-6)
    assert min(result["logreg"], result["1nn"]) < result["majority"]  # the data carry signal a classic model finds


def test_n_train_caps_the_pool_and_keeps_the_test_split():
    small = load_task(TaskConfig(name="digits", n_train=200, val_frac=0.25), 0)
    assert small.sizes == (150, 50, 1297)
    assert np.array_equal(small.extras["ids"]["test"], data("digits").extras["ids"]["test"])
    counts = np.bincount(small.y_val, minlength=10)
    assert counts.min() >= 4 and counts.max() <= 6  # stratified: 5 per class
    dense = load_task(TaskConfig(name="burgers", n_train=100), 0)
    assert dense.sizes == (80, 20, 200)
    full = data("burgers").extras["ids"]
    assert np.isin(
        np.concatenate([dense.extras["ids"]["train"], dense.extras["ids"]["val"]]),
        np.concatenate([full["train"], full["val"]]),
    ).all()
    with pytest.raises(ValueError, match="task.n_train=501.*at most 500"):
        load_task(TaskConfig(name="digits", n_train=501), 0)
    with pytest.raises(ValueError, match="task.val_frac=0.0"):
        load_task(TaskConfig(name="digits", val_frac=0.0), 0)


def test_max_test_scores_one_fixed_stratified_subset_of_the_test_split():
    full = data("digits")
    capped = [load_task(TaskConfig(name="digits", n_train=200, max_test=100), seed) for seed in (0, 1)]
    assert [c.sizes[2] for c in capped] == [100, 100]
    kept = capped[0].extras["ids"]["test"]
    assert np.array_equal(kept, capped[1].extras["ids"]["test"])  # the same subset for every seed
    assert np.isin(kept, full.extras["ids"]["test"]).all()
    row = np.searchsorted(full.extras["ids"]["test"], kept)
    assert np.array_equal(capped[0].y_test, full.y_test[row])  # labels travel with their samples
    assert np.bincount(capped[0].y_test, minlength=10).min() >= 9  # stratified: 10 per class
    assert load_task(TaskConfig(name="digits", max_test=5000), 0).sizes == full.sizes  # a cap, not a size
    cosmic = load_task(TaskConfig(name="cosmic", max_test=20), 0)
    whole = data("cosmic").extras["crops"]["test"]
    at = np.searchsorted(data("cosmic").extras["ids"]["test"], cosmic.extras["ids"]["test"])
    assert len(cosmic.extras["crops"]["test"]) == 20 and np.array_equal(cosmic.extras["crops"]["test"], whole[at])
    with pytest.raises(ValueError, match=r"task.max_test=-1 is invalid"):
        TrialConfig.from_flat({"task.max_test": -1})


def test_stratified_pick_keeps_proportions_where_sklearn_refuses():
    y = np.repeat(np.arange(52), 4)  # 52 classes x 4, fewer picks than classes
    picked = stratified_pick(y, 42, np.random.default_rng(0))
    assert len(picked) == len(np.unique(picked)) == 42
    assert np.bincount(y[picked], minlength=52).max() == 1
    y = np.array([0] * 90 + [1] * 10)
    assert np.bincount(y[stratified_pick(y, 20, np.random.default_rng(0))]).tolist() == [18, 2]


@pytest.mark.parametrize(
    "name, package",
    [("dna", "r-cran-mlbench"), ("spambase", "r-cran-kernlab"), ("fashion_mnist", "dataset-fashion-mnist")],
)
def test_a_missing_debian_package_is_named_with_its_install_command(name, package, tmp_path, monkeypatch):
    empty = tmp_path / "empty"
    empty.mkdir()
    monkeypatch.setenv("PARE_DATA", str(tmp_path / "cache"))  # no cached copy either
    monkeypatch.setenv("PARE_DEBIAN_ROOTS", str(empty))
    with pytest.raises(MissingDataError, match=f"Debian package {package}.*apt-get install {package}"):
        load_task(TaskConfig(name=name), 0)


def test_a_package_unpacked_without_root_is_found(tmp_path, monkeypatch):
    """setup_data.sh without root runs ``dpkg-deb -x`` into $PARE_DATA/debian; loaders search there."""
    rda = "usr/lib/R/site-library/mlbench/data/DNA.rda"
    unpacked = tmp_path / "debian"
    (unpacked / rda).parent.mkdir(parents=True)
    shutil.copy(f"/{rda}", unpacked / rda)
    monkeypatch.setenv("PARE_DATA", str(tmp_path / "cache"))
    monkeypatch.setenv("PARE_DEBIAN_ROOTS", os.pathsep.join([str(tmp_path / "empty"), str(unpacked)]))
    task = load_task(TaskConfig(name="dna"), 0)
    assert np.array_equal(task.x_test, data("dna").x_test)


def test_burgers_matches_the_cole_hopf_solution():
    """u0 = sin(2 pi x): u = -2 nu phi_x / phi with phi solving the heat equation (computed spectrally)."""
    nu, t, n = 0.01, 0.25, 256
    fine = np.arange(8192) / 8192
    k = 2 * np.pi * np.fft.fftfreq(len(fine), 1 / len(fine))
    phi_hat = np.fft.fft(np.exp(-(1 - np.cos(2 * np.pi * fine)) / (4 * np.pi * nu))) * np.exp(-nu * k**2 * t)
    exact = (-2 * nu * np.fft.ifft(1j * k * phi_hat).real / np.fft.ifft(phi_hat).real)[:: len(fine) // n]
    u = solve_burgers(np.sin(2 * np.pi * np.arange(n) / n)[None], t, nu=nu)[0]
    assert np.abs(u - exact).max() < 1e-5 * np.abs(exact).max()
    assert np.abs(exact).max() > 0.5 and np.abs(np.diff(exact)).max() > 0.1  # a steep front, not a smooth wave


def test_burgers_conserves_mass_and_loses_energy():
    samples = generate_burgers("pool", 4)
    u0, u1 = samples["x"][:, 0].astype(np.float64), samples["y"][:, 0].astype(np.float64)
    assert np.allclose(u0.mean(1), u1.mean(1), atol=1e-5)
    assert ((u1**2).mean(1) < (u0**2).mean(1)).all()


def test_cosmic_test_crops_come_from_sky_never_used_for_training():
    task = data("cosmic")
    crops = task.extras["crops"]
    assert (crops["train"][:, 1] + SIZE <= TEST_COLUMN).all() and (crops["val"][:, 1] + SIZE <= TEST_COLUMN).all()
    assert (crops["test"][:, 1] >= TEST_COLUMN).all()
    assert 0.005 < task.y_train.mean() < 0.05  # rays hit a few percent of pixels


def test_sphere_projection_places_the_image_on_the_southern_hemisphere():
    grid = equiangular_grid(8)
    assert np.allclose(np.linalg.norm(grid, axis=-1), 1.0)
    flat = project_to_sphere(np.ones((28, 28)), np.eye(3), grid)
    assert (flat[-1] == 1).all() and (flat[0] == 0).all()  # near the south pole on the image, north off it
    rotation = random_rotation(np.random.default_rng(0))
    assert np.allclose(rotation @ rotation.T, np.eye(3)) and np.linalg.det(rotation) == pytest.approx(1.0)
    flipped = project_to_sphere(np.ones((28, 28)), np.diag([1.0, -1.0, -1.0]), grid)  # half-turn about x
    assert (flipped[0] == 1).all() and (flipped[-1] == 0).all()
