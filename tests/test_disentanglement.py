"""Disentanglement scores on constructed latent spaces with known answers.

Constructed cases: latents equal to independent factors (best values), a permutation
with rescaling (invariance), a 45 degree rotation of two factors (worst values), and
extra pure-noise latents (nuisance dims). Thresholds are stated next to each assertion.
"""

import numpy as np
import pytest
import xarray as xr

from climlatent.errors import InputDataError
from climlatent.metrics.disentanglement import (
    dci,
    disentanglement_score,
    kl_disentanglement_score,
    knn_kl_divergence,
    mutual_information_gap,
    sap_score,
    total_correlation,
)

N = 1000
C45 = np.cos(np.pi / 4)
ROTATE = np.array([[C45, -C45], [C45, C45]])


def _factors(kind="uniform", n=N, d=3, seed=0):
    rng = np.random.default_rng(seed)
    return rng.uniform(size=(n, d)) if kind == "uniform" else rng.normal(size=(n, d))


def _whiten(x):
    """Centre and whiten so that the sample covariance is exactly the identity."""
    x = x - x.mean(0)
    return x @ np.linalg.inv(np.linalg.cholesky(np.cov(x, rowvar=False)).T)


def _permuted(f):
    return f[:, [2, 0, 1]] * [2.0, -1.0, 0.5] + 3.0


# ------------------------------------------------------------------------------ S_D


def test_sd_best_value_for_exactly_uncorrelated_factors_and_worst_for_rotation():
    f = _whiten(_factors("normal", d=2))
    assert disentanglement_score(f, f) == pytest.approx(1.0, abs=1e-12)
    assert disentanglement_score(f[:, ::-1] * [4.0, -2.0], f) == pytest.approx(1.0, abs=1e-12)
    # each rotated latent covaries equally with both factors: the worst value 1/s = 0.5
    assert disentanglement_score(f @ ROTATE, f) == pytest.approx(0.5, abs=1e-12)


def test_sd_sampled_factors_permutation_invariance_and_nuisance():
    f = _factors("uniform")
    best = disentanglement_score(f, f)
    assert best > 0.85  # measured 0.906: sampling covariances between independent factors
    assert disentanglement_score(_permuted(f), f) == pytest.approx(best, abs=1e-12)
    # the paper's caveat: uninformative latents pull S_D down (noise rows score ~0.5-0.8)
    noise = np.random.default_rng(1).normal(size=(N, 2))
    nuisance = disentanglement_score(np.column_stack([f, noise]), f)
    assert 1 / 3 < nuisance < best - 0.05  # measured 0.802
    f2 = f[:, :2]
    assert disentanglement_score(f2 @ ROTATE, f2) < 0.55  # measured 0.518; worst 0.5


def test_sd_depends_on_factor_units_unless_normalized():
    f = _whiten(_factors("normal", d=2))
    z = np.column_stack([f[:, 0] + 0.1 * f[:, 1], f[:, 1]])  # latent 0 leaks a little f1
    assert disentanglement_score(z, f) == pytest.approx((1 / 1.1 + 1) / 2, abs=1e-12)
    # in units where f1 is 10x larger, the leak covaries as much as the signal: 0.5 + 1
    wide = f * [1.0, 10.0]
    assert disentanglement_score(z, wide) == pytest.approx(0.75, abs=1e-12)
    assert disentanglement_score(z, wide, normalize=True) == pytest.approx(
        (1 / 1.1 + 1) / 2, abs=1e-12
    )


# ------------------------------------------------------------------------------ MIG


@pytest.mark.parametrize("kind", ["uniform", "normal"])
def test_mig_identity_permutation_rotation_and_nuisance(kind):
    f = _factors(kind)
    best = mutual_information_gap(f, f)  # continuous factors binned like the latents (20)
    assert best > 0.9  # measured 0.934 (uniform), 0.942 (normal)
    assert mutual_information_gap(_permuted(f), f) == pytest.approx(best, abs=1e-12)
    f2 = f[:, :2]
    assert mutual_information_gap(f2 @ ROTATE, f2) < 0.1  # measured 0.018 / 0.001
    noise = np.random.default_rng(1).normal(size=(N, 2))
    # pure-noise latents carry ~no information: MIG barely moves
    assert mutual_information_gap(np.column_stack([f, noise]), f) > best - 0.03


def test_mig_discrete_factors_and_duplicated_latent():
    rng = np.random.default_rng(0)
    f = rng.integers(0, 5, size=(N, 2)).astype(float)  # 5 values: used as labels
    z = f + rng.normal(scale=0.05, size=f.shape)
    assert mutual_information_gap(z, f) > 0.9  # measured 0.987
    # a second copy of the latent of factor 0 leaves factor 0 with no gap: MIG ~ 1/2
    dup = np.column_stack([z, z[:, 0] + rng.normal(scale=0.01, size=N)])
    assert mutual_information_gap(dup, f) < 0.6  # measured 0.494


# ------------------------------------------------------------------------------ DCI


@pytest.mark.parametrize("importance", ["gbt", "lasso"])
def test_dci_identity_permutation_rotation_and_nuisance(importance):
    f = _factors("normal")
    best = dci(f, f, importance=importance)
    assert best.disentanglement > 0.95 and best.completeness > 0.95  # measured 1.000
    assert best.informativeness > 0.95
    perm = dci(_permuted(f), f, importance=importance)
    assert perm.disentanglement == pytest.approx(best.disentanglement, abs=0.02)
    assert perm.completeness == pytest.approx(best.completeness, abs=0.02)
    np.testing.assert_allclose(perm.importance[[1, 2, 0]], best.importance, atol=0.02)
    f2 = f[:, :2]
    rot = dci(f2 @ ROTATE, f2, importance=importance)
    assert rot.disentanglement < 0.1 and rot.completeness < 0.1  # measured <= 0.001
    assert rot.informativeness > 0.95  # a rotation loses no information
    noise = np.random.default_rng(1).normal(size=(N, 2))
    nuis = dci(np.column_stack([f, noise]), f, importance=importance)
    # noise latents get ~no importance: their rows carry ~no weight in D, C stays high
    assert nuis.importance[3:].sum() < 0.1
    assert nuis.disentanglement > 0.9 and nuis.completeness > 0.9


def test_dci_duplicated_latent_lowers_completeness_not_disentanglement():
    rng = np.random.default_rng(0)
    f = rng.normal(size=(N, 2))
    z = np.column_stack([f, f[:, 0] + rng.normal(scale=1e-3, size=N)])
    s = dci(z, f)  # the trees share factor 0 between the two copies (a Lasso would pick one)
    assert s.disentanglement > 0.9  # measured 1.000
    assert s.completeness < 0.8  # measured 0.696; factor 1 alone would give 1


# ------------------------------------------------------------------------------ SAP


def test_sap_identity_permutation_rotation_and_nuisance():
    f = _factors("uniform")
    best = sap_score(f, f)
    assert best > 0.99  # measured 0.996
    assert sap_score(_permuted(f), f) == pytest.approx(best, abs=1e-12)
    f2 = f[:, :2]
    assert sap_score(f2 @ ROTATE, f2) < 0.1  # measured 0.061; R2 is 0.5 for both latents
    noise = np.random.default_rng(1).normal(size=(N, 2))
    assert sap_score(np.column_stack([f, noise]), f) > best - 0.01


@pytest.mark.parametrize(("scale", "offset"), [(1e-7, 0.0), (1e-3, 1e5), (1.0, 1e8)])
def test_sap_and_dci_of_latents_in_any_units(scale, offset):
    # latents of sd 1e-7 (or 1e-3 around 1e5) are the same code: SAP came out 0 (an
    # absolute 1e-12 variance floor) and the trees of DCI, reading float32 with values
    # within 1e-7 equal, found no split (D = 0, I = -0.006)
    f = _factors("normal", n=600, d=2)
    z = f[:, ::-1] * scale + offset
    assert sap_score(z, f) == pytest.approx(sap_score(f[:, ::-1], f), abs=1e-9)  # 0.9999
    unit, scaled = dci(f[:, ::-1], f), dci(z, f)
    assert unit.disentanglement > 0.99 and unit.informativeness > 0.99  # measured 0.998
    assert scaled.disentanglement == pytest.approx(unit.disentanglement, abs=1e-6)
    assert scaled.informativeness == pytest.approx(unit.informativeness, abs=1e-6)


# ------------------------------------------------------------------- total correlation


def test_total_correlation_gaussian_formula_and_independence():
    rng = np.random.default_rng(0)
    for rho in (0.3, 0.6, 0.9):
        z = rng.multivariate_normal([0, 0], [[1, rho], [rho, 1]], size=4000)
        r = np.corrcoef(z.T)[0, 1]
        assert total_correlation(z) == pytest.approx(-0.5 * np.log(1 - r**2), rel=1e-10)
        # and close to the population value
        assert total_correlation(z) == pytest.approx(-0.5 * np.log(1 - rho**2), abs=0.03)
        assert total_correlation(z, method="knn") == pytest.approx(
            -0.5 * np.log(1 - rho**2), abs=0.1
        )
    f = _factors("uniform")
    assert abs(total_correlation(f)) < 0.01  # measured 0.004
    assert abs(total_correlation(f, method="knn")) < 0.05
    assert total_correlation(_permuted(f)) == pytest.approx(total_correlation(f), abs=1e-12)
    noise = np.random.default_rng(1).normal(size=(N, 2))
    assert abs(total_correlation(np.column_stack([f, noise]))) < 0.02


def test_total_correlation_knn_sees_uncorrelated_dependence():
    # a rotated uniform square: uncorrelated (Gaussian TC ~ 0) but dependent; the exact
    # TC is 2 * (1/2 - log(2) / 2) = 0.307 (two triangular marginals, joint entropy 0)
    f = _factors("uniform", d=2)
    z = f @ ROTATE
    assert abs(total_correlation(z)) < 0.01
    assert 0.1 < total_correlation(z, method="knn") < 0.4  # measured 0.188


def test_total_correlation_knn_is_the_same_in_any_units():
    """Metamorphic: TC is unchanged by rescaling each latent. The kNN estimate measured
    distances in the latents' units: three Gaussian latents of known TC 0.271 gave
    0.288 in unit sd and 0.068 with sds (0.01, 1, 30), 0.017 with (1000, 0.001, 1),
    reading as nearly independent. Now on latents scaled to unit sd: the same value."""
    cov = np.array([[1, 0.6, 0.2], [0.6, 1, 0.3], [0.2, 0.3, 1]])
    truth = -0.5 * np.log(np.linalg.det(cov))  # 0.271
    z = np.random.default_rng(0).multivariate_normal(np.zeros(3), cov, 4000)
    unit = total_correlation(z, method="knn")
    assert unit == pytest.approx(truth, abs=0.05)  # measured 0.288
    for scales in ([0.01, 1, 30], [1000, 0.001, 1]):
        shifted = z * scales + 5.0
        assert total_correlation(shifted, method="knn") == pytest.approx(unit, abs=1e-9)


# ----------------------------------------------------------------------------- kNN KL


def _kl_gaussians(m0, s0, m1, s1):
    s1_inv = np.linalg.inv(s1)
    dm = m1 - m0
    logdet = np.linalg.slogdet(s1)[1] - np.linalg.slogdet(s0)[1]
    return 0.5 * (np.trace(s1_inv @ s0) + dm @ s1_inv @ dm - len(m0) + logdet)


@pytest.mark.parametrize("adaptive", [True, False])
def test_knn_kl_matches_closed_form_gaussian_kl(adaptive):
    rng = np.random.default_rng(0)
    m0, s0 = np.zeros(2), np.eye(2)
    m1, s1 = np.array([1.0, 0.5]), np.array([[2.0, 0.3], [0.3, 0.5]])
    exact = _kl_gaussians(m0, s0, m1, s1)  # 0.711 nats
    x = rng.multivariate_normal(m0, s0, size=4000)
    y = rng.multivariate_normal(m1, s1, size=4000)
    # tolerance 0.1 nats (14 %): over 10 seeds the adaptive estimate erred by -0.10..+0.05
    assert knn_kl_divergence(x, y, adaptive=adaptive) == pytest.approx(exact, abs=0.1)
    assert abs(knn_kl_divergence(x, rng.multivariate_normal(m0, s0, size=4000))) < 0.05


# ------------------------------------------------------------------------------ S_KL


def test_skl_recovers_scale_and_shift_including_sign():
    rng = np.random.default_rng(0)
    theta = np.column_stack([rng.uniform(size=N), rng.gamma(2.0, size=N)])
    a, b = np.array([2.0, -0.5]), np.array([1.0, -3.0])
    z = theta / a + b  # so that a * (z - b) == theta
    res = kl_disentanglement_score(z, theta)
    ident = kl_disentanglement_score(theta, theta)
    # minimising a noisy estimate biases S_KL below 0: measured -0.132 and -0.133
    assert abs(ident.score) < 0.2 and abs(res.score) < 0.2
    # sign of a from the skewness; |a| within 15 %, b within 0.15 std(z)
    np.testing.assert_allclose(res.scale, a, rtol=0.15)
    assert np.all(np.abs(res.shift - b) < 0.15 * z.std(0))
    np.testing.assert_allclose(ident.scale, [1.0, 1.0], rtol=0.15)


def test_skl_rotation_permutation_and_dimension():
    u = _factors("uniform", d=2)
    best = kl_disentanglement_score(u, u).score
    # a rotated square cannot be scaled and shifted into a square: S_KL grows
    assert kl_disentanglement_score(u @ ROTATE, u).score > best + 0.1  # measured 0.212 vs 0.004
    # a rotated isotropic Gaussian looks the same: S_KL cannot see it (paper, Sec. 5)
    g = _factors("normal", d=2)
    assert abs(kl_disentanglement_score(g @ ROTATE, g).score) < 0.2  # measured -0.075
    # swapped latents of differently shaped factors: found only with permute=True
    rng = np.random.default_rng(0)
    theta = np.column_stack([rng.uniform(size=N), rng.gamma(2.0, size=N)])
    plain = kl_disentanglement_score(theta[:, ::-1], theta)
    perm = kl_disentanglement_score(theta[:, ::-1], theta, permute=True)
    assert perm.permutation == (1, 0) and perm.score < plain.score - 0.1  # -0.132 vs 0.230
    with pytest.raises(InputDataError, match="latents"):
        kl_disentanglement_score(np.column_stack([u, u[:, 0]]), u)  # nuisance dim


# ------------------------------------------------------------------------- inputs


def test_dataarray_inputs_match_numpy():
    f = _factors("normal", n=300, d=2)
    fa = xr.DataArray(f, dims=("time", "mode"))
    za = xr.DataArray(f @ ROTATE, dims=("time", "latent"))
    assert disentanglement_score(za, fa) == disentanglement_score(f @ ROTATE, f)
    assert sap_score(za, fa) == sap_score(f @ ROTATE, f)


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda z, f: disentanglement_score(z[:, 0], f), "'latents' must be 2-D"),
        (lambda z, f: disentanglement_score(z, np.where(f > 2, np.nan, f)), "'factors' has"),
        (lambda z, f: sap_score(z[:50], f), "'latents' has 50 samples but 'factors'"),
        (lambda z, f: dci(z[:5], f[:5]), "'latents' has 5 samples"),
        (lambda z, f: mutual_information_gap(z[:, :1], f), "'latents' has 1 columns"),
        (lambda z, f: mutual_information_gap(z, f[:, :1] * 0), "'factors' is constant"),
        (lambda z, f: mutual_information_gap(z, f, n_bins=1), "'n_bins'"),
        (lambda z, f: sap_score(z.astype(str).astype(object) + "x", f), "'latents' is not"),
        (lambda z, f: kl_disentanglement_score(z, f[:, :1]), "'latents' has 2 columns"),
        (lambda z, f: kl_disentanglement_score(z, f, k=1), "'k'"),
        (lambda z, f: total_correlation(z, method="ksg"), "'method'"),
        (lambda z, f: total_correlation(z[:, [0, 0]]), "'latents' are linearly"),
        (lambda z, f: dci(z, f, importance="forest"), "'importance'"),
        (lambda z, f: knn_kl_divergence(z, f[:, :1]), "'x' has 2 dimensions"),
    ],
)
def test_bad_inputs_name_the_argument(call, match):
    f = _factors("normal", n=200, d=2)
    with pytest.raises(InputDataError, match=match):
        call(f @ ROTATE, f)


@pytest.mark.parametrize(
    "call",
    [
        lambda z, f: sap_score(z, f),
        lambda z, f: dci(z, f, importance="lasso"),
        lambda z, f: total_correlation(f),
        lambda z, f: kl_disentanglement_score(z, f),
    ],
    ids=["sap", "dci", "total_correlation", "kl"],
)
@pytest.mark.parametrize("value", [0.1, 280.1])
def test_a_column_constant_at_a_value_whose_mean_rounds_is_refused(call, value):
    """A constant 0.1 or 280.1 has a float64 std of 7e-17 or 1e-12, not 0: it was taken
    for a varying column and scored (SAP 0.50, DCI informativeness 1.00 or 0.50, total
    correlation 1e-16, S_KL 0.94) where a constant 1.0 is refused."""
    f = _factors("normal", n=200, d=2)
    f[:, 1] = value
    with pytest.raises(InputDataError, match="constant"):
        call(f.copy(), f)
