import numpy as np
import pytest
from scipy.linalg import solve_discrete_lyapunov

from climlatent.estimators._weather import VARModel, block_bootstrap, fit_var, select_order

A1 = np.array([[0.6, 0.2, 0.0], [-0.1, 0.5, 0.1], [0.0, 0.3, 0.4]])
SIGMA = np.array([[1.0, 0.3, 0.1], [0.3, 0.8, -0.2], [0.1, -0.2, 0.5]])
C = np.array([1.0, -0.5, 2.0])
A2_VAR2 = np.array([[[0.4, 0.1], [0.0, 0.3]], [[0.3, 0.0], [0.1, 0.35]]])


def _simulate_var(coefs, sigma, intercept, n_members, n_time, seed, start=None):
    """Independent reference simulator: a plain loop, zero (or given) initial lags."""
    rng = np.random.default_rng(seed)
    p, k = coefs.shape[0], coefs.shape[1]
    chol = np.linalg.cholesky(sigma)
    out = np.zeros((n_members, n_time + p, k))
    if start is not None:
        out[:, :p] = np.asarray(start)[:, None]
    for m in range(n_members):
        for t in range(p, n_time + p):
            lagged = sum(coefs[i] @ out[m, t - 1 - i] for i in range(p))
            out[m, t] = intercept + lagged + chol @ rng.standard_normal(k)
    return out[:, p:]


def _lag_cov(x, lag):
    """Sample Cov(y[t+lag], y[t]) pooled over realisations, x (n, t, k)."""
    anomaly = x - x.mean(axis=(0, 1))
    lead, base = anomaly[:, lag:], anomaly[:, : anomaly.shape[1] - lag]
    return np.einsum("nti,ntj->ij", lead, base) / (lead.shape[0] * lead.shape[1])


def _corr(cov_lag, cov0):
    scale = np.sqrt(np.diag(cov0))
    return cov_lag / np.outer(scale, scale)


@pytest.fixture(scope="module")
def var1_data():
    return _simulate_var(A1[None], SIGMA, C, n_members=4, n_time=6000, seed=0)


@pytest.fixture(scope="module")
def var2_data():
    return _simulate_var(A2_VAR2, 0.5 * np.eye(2), np.zeros(2), n_members=2, n_time=8000, seed=1)


@pytest.fixture(scope="module")
def ar1():
    """AR(1), phi = 0.7, three members of 4000 steps, two PCs."""
    return _simulate_var(0.7 * np.eye(2)[None], np.eye(2), np.zeros(2), 3, 4000, seed=2)


def test_var1_recovers_coefficients_and_innovation_covariance(var1_data):
    model = fit_var(var1_data, order=1)
    assert model.coefs.shape == (1, 3, 3)
    np.testing.assert_allclose(model.coefs[0], A1, atol=0.03)
    np.testing.assert_allclose(model.sigma, SIGMA, atol=0.04)
    np.testing.assert_allclose(model.intercept, C, atol=0.1)
    assert model.is_stable()


def test_var1_simulation_matches_lyapunov_moments(var1_data):
    model = fit_var(var1_data, order=1)
    gamma0 = solve_discrete_lyapunov(A1, SIGMA)
    gamma1 = A1 @ gamma0
    mean = np.linalg.solve(np.eye(3) - A1, C)
    np.testing.assert_allclose(model.autocovariance(0), gamma0, rtol=0.1, atol=0.05)
    np.testing.assert_allclose(model.autocorrelation(1), _corr(gamma1, gamma0), atol=0.03)

    simulated = model.simulate(8, 5000, np.random.default_rng(3))
    assert simulated.shape == (8, 5000, 3)
    np.testing.assert_allclose(simulated.mean(axis=(0, 1)), mean, atol=0.15)
    cov0, cov1 = _lag_cov(simulated, 0), _lag_cov(simulated, 1)
    np.testing.assert_allclose(cov0, gamma0, rtol=0.1, atol=0.08)
    np.testing.assert_allclose(_corr(cov1, cov0), _corr(gamma1, gamma0), atol=0.04)


def test_var2_recovery_and_bic_order_selection(var2_data):
    model = fit_var(var2_data, order=2)
    np.testing.assert_allclose(model.coefs, A2_VAR2, atol=0.04)
    np.testing.assert_allclose(model.sigma, 0.5 * np.eye(2), atol=0.03)
    assert select_order(var2_data, max_order=5, criterion="bic") == 2
    assert select_order(var2_data, max_order=5, criterion="aic") >= 2
    assert select_order(var2_data[:, :, :1], max_order=1) == 1


def test_var2_simulation_matches_companion_lyapunov_autocovariances():
    truth = VARModel(np.zeros(2), A2_VAR2, 0.5 * np.eye(2))
    companion = np.block([[A2_VAR2[0], A2_VAR2[1]], [np.eye(2), np.zeros((2, 2))]])
    stacked = solve_discrete_lyapunov(companion, np.diag([0.5, 0.5, 0.0, 0.0]))
    simulated = truth.simulate(4, 6000, np.random.default_rng(6))
    for lag in range(4):
        expected = (np.linalg.matrix_power(companion, lag) @ stacked)[:2, :2]
        np.testing.assert_allclose(truth.autocovariance(lag), expected, atol=1e-10)
        np.testing.assert_allclose(_lag_cov(simulated, lag), expected, atol=0.08)
    np.testing.assert_allclose(fit_var(simulated, order=2).coefs, A2_VAR2, atol=0.04)


def test_fit_does_not_use_pairs_straddling_members():
    # Nearly noise-free, persistent members that start far apart: member 0 relaxes
    # down from mu + 50, member 1 up from mu - 50, so their means differ by over 20.
    # Within-member pairs recover the dynamics almost exactly; the one pair joining
    # the members (a jump of about 100 against noise of 0.01) would spoil the fit.
    a = np.array([[0.9, 0.05], [-0.05, 0.85]])
    c = np.array([1.0, -2.0])
    mu = np.linalg.solve(np.eye(2) - a, c)
    members = np.stack(
        [
            _simulate_var(a[None], 1e-4 * np.eye(2), c, 1, 40, seed=s, start=[mu + d])[0]
            for s, d in ((4, 50.0), (5, -50.0))
        ]
    )
    assert np.linalg.norm(members[0].mean(axis=0) - members[1].mean(axis=0)) > 20
    model = fit_var(members)
    np.testing.assert_allclose(model.coefs[0], a, atol=0.01)
    np.testing.assert_allclose(model.intercept, c, atol=0.05)
    joined = fit_var(members.reshape(1, 80, 2))  # the same data as one member
    assert np.abs(joined.intercept - c).max() > 0.2


def _decode(out):
    """Member and time of each resampled step, from values encoded as 1000 m + t."""
    return out[..., 0] // 1000, out[..., 0] % 1000


@pytest.mark.parametrize("circular", [True, False])
def test_block_bootstrap_blocks_are_contiguous_segments_of_one_member(circular):
    n_members, n_time, block = 3, 40, 7
    code = 1000.0 * np.arange(n_members)[:, None] + np.arange(n_time)
    series = np.stack([code, -code], axis=-1)
    out = block_bootstrap(
        series, 50, block, np.random.default_rng(0), n_steps=45, circular=circular
    )
    assert out.shape == (50, 45, 2)
    np.testing.assert_array_equal(out[..., 1], -out[..., 0])
    member, time = _decode(out)
    for r in range(out.shape[0]):
        for start in range(0, 45, block):
            seg_member, seg_time = member[r, start : start + block], time[r, start : start + block]
            assert np.all(seg_member == seg_member[0])
            steps = np.diff(seg_time)
            if circular:
                assert np.all((steps == 1) | (steps == 1 - n_time))
            else:
                assert np.all(steps == 1)
    assert np.any(np.diff(time, axis=1) == 1 - n_time) == circular  # wraps only if circular


def test_block_bootstrap_keeps_marginals_and_lag1_autocorrelation(ar1):
    out = block_bootstrap(ar1, 20, 50, np.random.default_rng(1), n_steps=5000)
    assert out.shape == (20, 5000, 2)
    np.testing.assert_allclose(out.mean(axis=(0, 1)), ar1.mean(axis=(0, 1)), atol=0.1)
    np.testing.assert_allclose(out.var(axis=(0, 1)), ar1.var(axis=(0, 1)), rtol=0.05)
    acf1 = np.diag(_corr(_lag_cov(out, 1), _lag_cov(out, 0)))
    assert np.all(np.abs(acf1 - 0.7) < 0.05)


def test_block_bootstrap_is_deterministic_given_the_generator(ar1):
    def draw(seed):
        return block_bootstrap(ar1[0], 3, 10, np.random.default_rng(seed))

    np.testing.assert_array_equal(draw(7), draw(7))
    assert draw(7).shape == (3, 4000, 2)
    assert not np.array_equal(draw(7), draw(8))


def test_var_simulation_is_deterministic_and_starts_stationary():
    model = VARModel(np.array([2.0]), np.array([[[0.9]]]), np.array([[0.0]]))
    np.testing.assert_allclose(model.simulate(2, 5, np.random.default_rng(0), burn_in=0), 20.0)
    noisy = VARModel(np.zeros(2), 0.5 * np.eye(2)[None], np.eye(2))
    first = noisy.simulate(2, 50, np.random.default_rng(9))
    np.testing.assert_array_equal(first, noisy.simulate(2, 50, np.random.default_rng(9)))


def test_var_simulation_is_stationary_from_its_first_step():
    # rho = 0.995: started at the mean, the step after 100 burn-in steps had a variance
    # of (1 - rho**202) / (1 - rho**2) = 63.8 of 100.25 (draws: 65, -16 standard errors)
    slow = VARModel(np.zeros(1), np.array([[[0.995]]]), np.eye(1))
    first = slow.simulate(4000, 1, np.random.default_rng(0))
    variance = slow.autocovariance(0)[0, 0]
    assert abs(first.var() - variance) < 4 * variance * np.sqrt(2 / 4000)
    # VAR(2), no burn-in: the first two steps have the lag-0 and lag-1 covariances
    var2 = VARModel(np.zeros(2), A2_VAR2, np.array([[1.0, 0.4], [0.4, 0.5]]))
    x = var2.simulate(20000, 2, np.random.default_rng(1), burn_in=0)
    sd = np.sqrt(np.diag(var2.autocovariance(0)))
    scale = np.outer(sd, sd) / np.sqrt(20000)  # the standard error of a covariance, about
    np.testing.assert_array_less(np.abs(_lag_cov(x, 0) - var2.autocovariance(0)), 4 * scale)
    np.testing.assert_array_less(np.abs(_lag_cov(x, 1) - var2.autocovariance(1)), 4 * scale)


def test_simulation_tolerates_round_off_negative_eigenvalues():
    sigma = np.ones((2, 2)) - 1e-12 * np.eye(2)  # rank one, eigenvalue -1e-12
    with pytest.raises(np.linalg.LinAlgError):
        np.linalg.cholesky(sigma)
    model = VARModel(np.zeros(2), 0.5 * np.eye(2)[None], sigma)
    out = model.simulate(3, 200, np.random.default_rng(0))
    np.testing.assert_allclose(out[..., 0], out[..., 1], atol=1e-5)
    assert out.std() > 0.5


def test_unstable_fit_raises():
    rng = np.random.default_rng(0)
    explosive = np.zeros((300, 1))
    for t in range(1, 300):
        explosive[t] = 1.03 * explosive[t - 1] + rng.standard_normal(1)
    with pytest.raises(ValueError, match="unstable"):
        fit_var(explosive)
    unstable = VARModel(np.zeros(1), np.array([[[1.1]]]), np.eye(1))
    assert not unstable.is_stable()
    with pytest.raises(ValueError, match="unstable"):
        unstable.simulate(1, 10, rng)


GOOD = np.zeros((2, 30, 2)) + np.arange(30.0)[:, None] % 7
WHITE_NOISE = VARModel(np.zeros(1), np.zeros((1, 1, 1)), np.eye(1))


@pytest.mark.parametrize(
    ("call", "name"),
    [
        (lambda: block_bootstrap(np.zeros(5), 1, 2, np.random.default_rng()), "series"),
        (lambda: block_bootstrap(np.full((4, 1), np.nan), 1, 2, np.random.default_rng()), "series"),
        (lambda: block_bootstrap(GOOD, 0, 2, np.random.default_rng()), "n_realizations"),
        (lambda: block_bootstrap(GOOD, 1, 31, np.random.default_rng()), "block_length"),
        (lambda: block_bootstrap(GOOD, 1, 2.0, np.random.default_rng()), "block_length"),
        (lambda: block_bootstrap(GOOD, 1, 2, np.random.default_rng(), n_steps=0), "n_steps"),
        (lambda: block_bootstrap(GOOD, 1, 2, 42), "rng"),
        (lambda: fit_var(GOOD, order=0), "order"),
        (lambda: fit_var(GOOD, ridge=-1.0), "ridge"),
        (lambda: fit_var(GOOD[:, :3], order=2), "series is too short"),
        # was "too short for order 1: -20 lagged pairs", naming neither max_order nor 40
        (lambda: select_order(GOOD, 40), "too short for max_order=40: 30 steps per member give 0"),
        (lambda: fit_var(GOOD, order=40), "too short for order=40: 30 steps per member give 0"),
        (lambda: select_order(GOOD, 0), "max_order"),
        (lambda: select_order(GOOD, 2, criterion="hqic"), "criterion"),
        (lambda: VARModel(np.zeros(2), np.zeros((2, 2)), np.eye(2)), "coefs"),
        (lambda: VARModel(np.zeros(3), np.zeros((1, 2, 2)), np.eye(2)), "intercept"),
        (lambda: VARModel(np.zeros(2), np.zeros((1, 2, 2)), np.eye(3)), "sigma"),
        (lambda: VARModel(np.zeros(2), np.zeros((1, 2, 2)), -np.eye(2)), "sigma"),
        (lambda: WHITE_NOISE.simulate(1, 5, np.random.default_rng(), burn_in=-1), "burn_in"),
        (lambda: WHITE_NOISE.simulate(1, 5, np.random.default_rng(0).normal), "rng"),
        (lambda: WHITE_NOISE.autocovariance(-1), "lag"),
    ],
)
def test_bad_inputs_raise_value_error_naming_the_argument(call, name):
    with pytest.raises(ValueError, match=name):
        call()
