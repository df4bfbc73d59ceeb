"""The Darcy solver against independent solutions, a hand-solved case and the discrete divergence theorem."""

import numpy as np
import pytest
import scipy.sparse as sp
from scipy.sparse.linalg import spsolve

from pare_core.tasks.darcy import A_HIGH, A_LOW, generate, permeability, solve_darcy


def poisson_kron(s: int) -> np.ndarray:
    """-Laplace(u) = 1 on the unit square, u = 0 on the boundary: the textbook 5-point matrix, built as a
    Kronecker sum (no face coefficients), solved separately."""
    m, h = s - 2, 1.0 / (s - 1)
    second = sp.diags([-np.ones(m - 1), 2 * np.ones(m), -np.ones(m - 1)], [-1, 0, 1]) / h**2
    laplacian = sp.kron(sp.eye(m), second) + sp.kron(second, sp.eye(m))
    u = np.zeros((s, s))
    u[1:-1, 1:-1] = spsolve(laplacian.tocsc(), np.ones(m * m)).reshape(m, m)
    return u


def poisson_series(s: int, terms: int = 400) -> np.ndarray:
    """The exact solution of -Laplace(u) = 1 on the unit square (double sine series over odd modes)."""
    x = np.linspace(0, 1, s)
    k = np.arange(1, terms, 2)
    sines = np.sin(np.pi * np.outer(k, x))  # (modes, points)
    coef = 16 / (np.pi**4 * np.outer(k, k) * (k[:, None] ** 2 + k[None, :] ** 2))
    return sines.T @ coef @ sines


@pytest.mark.parametrize("s", [9, 29, 57])
def test_constant_permeability_is_the_five_point_poisson_solve(s):
    assert np.allclose(solve_darcy(np.ones((s, s))), poisson_kron(s), rtol=1e-12, atol=1e-15)


def test_constant_permeability_converges_to_the_exact_poisson_solution():
    errors = [np.abs(solve_darcy(np.ones((s, s))) - poisson_series(s)).max() for s in (29, 57)]
    assert errors[1] < 2e-5  # u_max is 0.0737
    assert 3.5 < errors[0] / errors[1] < 4.5  # second order: halving h divides the error by ~4
    assert solve_darcy(np.ones((57, 57)))[28, 28] == pytest.approx(0.07367, abs=2e-5)


def test_permeability_scales_the_solution_inversely():
    assert np.allclose(solve_darcy(np.full((21, 21), 12.0)), solve_darcy(np.ones((21, 21))) / 12.0, rtol=1e-12)


def test_one_interior_node_uses_harmonic_face_means():
    """s = 3: one unknown. Faces to 3-valued neighbours have 2*12*3/15 = 4.8, to 12-valued ones 12."""
    a = np.array([[3.0, 3.0, 3.0], [12.0, 12.0, 12.0], [3.0, 3.0, 3.0]])
    h2 = 0.5**2
    assert solve_darcy(a)[1, 1] == pytest.approx(h2 / (4.8 + 4.8 + 12.0 + 12.0))


def test_flux_through_the_boundary_balances_the_source():
    """Summed over all cells, interior face fluxes cancel (symmetric face coefficients), so the flux out
    through the boundary faces equals f times the interior area, also across permeability jumps."""
    s = 33
    a = permeability(np.random.default_rng(3), s)
    u = solve_darcy(a)
    h = 1.0 / (s - 1)

    def harmonic(p, q):
        return 2 * p * q / (p + q)

    outflow = (
        (harmonic(a[1:-1, 1], a[1:-1, 0]) * u[1:-1, 1]).sum()
        + (harmonic(a[1:-1, -2], a[1:-1, -1]) * u[1:-1, -2]).sum()
        + (harmonic(a[1, 1:-1], a[0, 1:-1]) * u[1, 1:-1]).sum()
        + (harmonic(a[-2, 1:-1], a[-1, 1:-1]) * u[-2, 1:-1]).sum()
    )
    assert outflow == pytest.approx((s - 2) ** 2 * h**2, rel=1e-10)  # flux (a du/dn) h summed; source 1 * area
    assert (u[1:-1, 1:-1] > 0).all()  # maximum principle: positive source, zero boundary


def test_generated_samples_are_the_fno_setting_and_deterministic():
    first = generate("pool", 6)
    assert set(np.unique(first["x"])) == {A_LOW, A_HIGH}
    assert 0.2 < (first["x"] == A_HIGH).mean() < 0.8  # the field is thresholded at its mean, 0
    assert np.all((first["y"].max(axis=(1, 2, 3)) > 0.005) & (first["y"].max(axis=(1, 2, 3)) < 0.03))
    assert (first["y"][:, :, 0, :] == 0).all() and (first["y"][:, :, :, -1] == 0).all()
    longer = generate("pool", 8)  # sample i depends on its own seed only
    assert np.array_equal(longer["x"][:6], first["x"]) and np.array_equal(longer["y"][:6], first["y"])
    test = generate("test", 6)
    assert not np.isin(test["ids"], first["ids"]).any()
    assert not any(np.array_equal(t, p) for t in test["x"] for p in first["x"])
