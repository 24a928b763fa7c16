"""Latent distributions for a VAE encoder head: deterministic, Gaussian and GEV.

Each latent is an `torch.nn.Module` that owns its own linear heads: it takes the
encoder's feature vector ``h`` of shape ``(batch, in_features)`` and returns a
`LatentSample` holding the code ``z`` fed to the decoder, the deterministic code
``mean`` used by ``encode``, and the per-sample KL divergence ``kl`` of shape
``(batch,)`` (summed over latent dims) to the prior. The prior is the standard normal
N(0, I) for every kind. Build one with `make_latent`. In training mode ``z`` is
(in eval mode ``z = mean``): ``"none"``: ``Linear(h)``, ``kl = 0``; ``"gaussian"``:
``mu + exp(logvar / 2) * eps``, analytic KL; ``"gaussian_hp"``: the same draw under a
learned hierarchical prior (its KL bound); ``"gev"``: a true GEV draw by its inverse
CDF, Monte Carlo KL; ``"gev_moments"``: a Gaussian draw with the GEV's mean and
variance (the seed paper's Section 2 rule), analytic KL.

GEV conventions
---------------
The shape ``xi`` follows the climate convention: ``xi > 0`` is the heavy-tailed
(Frechet) case, ``xi = 0`` Gumbel, ``xi < 0`` has a bounded upper tail ending at
``mu - sigma / xi``. `scipy.stats.genextreme` uses the opposite sign: ``c = -xi``.
The CDF is ``F(z) = exp(-(1 + xi (z - mu) / sigma) ** (-1 / xi))``, with mean
``mu + sigma (g1 - 1) / xi`` (finite for ``xi < 1``) and variance
``sigma**2 (g2 - g1**2) / xi**2`` (finite for ``xi < 1/2``), ``g_k = Gamma(1 - k xi)``.
A fixed ``xi`` must lie in ``(-1, 1/2)``: there the density is bounded and the KL to
N(0, I) is finite. A learned ``xi`` is ``lo + (hi - lo) * sigmoid(param)``, one per
latent dim, in ``xi_range`` (default ``(-0.6, 0.2)``, around the seed's fixed
``-0.5``; a saturated float32 sigmoid can land on its ends, still inside the limits):
its upper end stays below ``1/4``, where ``E[z**4]`` and so the variance of the Monte
Carlo KL estimate and of its gradient are finite.

How gev and gev_moments differ
------------------------------
* Shape. ``"gev"`` draws from the GEV itself: at the seed's ``xi = -0.5`` its upper
  tail is bounded and its skewness is negative, -0.63 (`scipy.stats.genextreme` with
  ``c = 0.5``; sets of 20 000 draws of `gev_sample` give -0.64 +- 0.01, mean +- sd
  over 20 seeds). ``"gev_moments"`` is a Gaussian with the same mean (0.228) and
  variance (0.858): symmetric, skewness 0 (draws: 0.00 +- 0.01), and unbounded. Only
  the first two moments of the GEV survive.
* KL. ``"gev"`` has no closed-form KL to N(0, I); it is estimated by Monte Carlo,
  ``log q(z) - log p(z)`` at the reparameterised draw(s) (``n_kl_samples``), unbiased
  but noisy. ``"gev_moments"`` uses the exact Gaussian KL.
* Scale. The seed writes ``Z = E(x) + Var(x) * error``, multiplying the noise by the
  variance. With ``scale="std"`` (default) we multiply by the standard deviation, so
  that ``Var`` really is the variance of ``z``; ``scale="variance"`` reproduces the
  literal text (the noise then has standard deviation ``Var``).

``tests/test_latents.py`` checks the skewness figures.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from climlatent.models.priors import HierarchicalPrior

__all__ = [
    "DeterministicLatent",
    "GEVLatent",
    "GEVMomentsLatent",
    "GaussianLatent",
    "LATENT_KINDS",
    "LatentSample",
    "gev_log_prob",
    "gev_mean",
    "gev_quantile",
    "gev_sample",
    "gev_variance",
    "make_latent",
]

XI_LIMITS = (-1.0, 0.5)
_SERIES_TOL = 1e-4  # below this |argument| the ratios use their Taylor series
_ZETA3 = 1.2020569031595942
_LOG_2PI = math.log(2 * math.pi)


@dataclass
class LatentSample:
    """What a latent module returns for a batch of feature vectors.

    Attributes
    ----------
    z : torch.Tensor
        ``(batch, latent_dim)`` code for the decoder: a reparameterised draw in
        training mode, ``mean`` in eval mode.
    mean : torch.Tensor
        ``(batch, latent_dim)`` deterministic code (used by ``encode``).
    kl : torch.Tensor
        ``(batch,)`` KL divergence to the N(0, I) prior, summed over latent dims.

    Examples
    --------
    >>> s = LatentSample(z=torch.zeros(2, 3), mean=torch.zeros(2, 3), kl=torch.zeros(2))
    >>> s.kl.shape
    torch.Size([2])
    """

    z: Tensor
    mean: Tensor
    kl: Tensor


def _stable_ratio(fn, y: Tensor, c1: float, c2: float) -> Tensor:
    """``fn(y) / y`` for ``fn(0) = 0``, by its series ``1 + c1 y + c2 y**2`` near 0."""
    small = y.abs() < _SERIES_TOL
    y_safe = torch.where(small, torch.ones_like(y), y)
    return torch.where(small, 1 + y * (c1 + c2 * y), fn(y_safe) / y_safe)


def gev_quantile(u: Tensor, mu: Tensor, sigma: Tensor, xi: Tensor) -> Tensor:
    """GEV inverse CDF ``mu + sigma * ((-log u) ** (-xi) - 1) / xi`` at levels ``u``.

    Smooth through ``xi = 0``, where it is the Gumbel ``mu - sigma * log(-log u)``;
    differentiable in ``mu``, ``sigma`` and ``xi`` (the pathwise gradient of a draw).

    Examples
    --------
    >>> u = torch.tensor([0.5])
    >>> gev_quantile(u, torch.tensor(0.0), torch.tensor(1.0), torch.tensor(0.0))
    tensor([0.3665])
    """
    log_e = torch.log(-torch.log(u))
    return mu - sigma * log_e * _stable_ratio(torch.expm1, -xi * log_e, 1 / 2, 1 / 6)


def _uniform(shape: torch.Size, like: Tensor, generator: torch.Generator | None) -> Tensor:
    """Uniform draws in ``(eps, 1 - eps)``, so that ``-log u`` is finite and positive."""
    eps = torch.finfo(like.dtype).eps
    u = torch.rand(shape, generator=generator, dtype=like.dtype, device=like.device)
    return eps + (1 - 2 * eps) * u


def gev_sample(
    mu: Tensor,
    sigma: Tensor,
    xi: Tensor,
    sample_shape: tuple[int, ...] = (),
    generator: torch.Generator | None = None,
) -> Tensor:
    """Reparameterised GEV draws: `gev_quantile` at ``U ~ Uniform(eps, 1 - eps)``.

    ``mu``, ``sigma`` (> 0) and ``xi`` (climate sign: scipy's ``c = -xi``) broadcast
    together; the result has shape ``sample_shape + broadcast shape`` and is
    differentiable in them. Pass a ``generator`` for reproducible draws.

    Examples
    --------
    >>> g = torch.Generator().manual_seed(0)
    >>> z = gev_sample(torch.zeros(3), torch.ones(3), torch.tensor(-0.5), (5,), g)
    >>> z.shape, bool((z < 2.0).all())  # bounded above at mu - sigma / xi = 2
    (torch.Size([5, 3]), True)
    """
    mu, sigma, xi = torch.broadcast_tensors(mu, sigma, xi)
    u = _uniform(torch.Size(sample_shape) + mu.shape, mu, generator)
    return gev_quantile(u, mu, sigma, xi)


def gev_log_prob(z: Tensor, mu: Tensor, sigma: Tensor, xi: Tensor) -> Tensor:
    """GEV log-density, ``-inf`` outside the support ``1 + xi (z - mu) / sigma > 0``.

    For ``xi < 0`` the support is bounded above at ``mu - sigma / xi``, for ``xi > 0``
    below at the same point; ``xi = 0`` (Gumbel) is handled without division by zero.

    Examples
    --------
    >>> zero, one = torch.tensor(0.0), torch.tensor(1.0)
    >>> gev_log_prob(torch.tensor([0.0, 3.0]), zero, one, torch.tensor(-0.5))  # z < 2
    tensor([-1., -inf])
    """
    s = (z - mu) / sigma
    y = xi * s
    inside = y > -1
    y = torch.where(inside, y, torch.zeros_like(y))
    t = s * _stable_ratio(torch.log1p, y, -1 / 2, 1 / 3)  # log(1 + xi s) / xi
    log_prob = -torch.log(sigma) - torch.log1p(y) - t - torch.exp(-t)
    return torch.where(inside, log_prob, torch.full_like(log_prob, -math.inf))


def _gev_log_prob_at_quantile(u: Tensor, sigma: Tensor, xi: Tensor) -> Tensor:
    """``gev_log_prob(gev_quantile(u, ...))``, written in ``e = -log u``.

    There ``1 + xi (z - mu) / sigma = e ** (-xi)``, so the density needs no difference
    of nearly equal numbers near the upper endpoint (float32 draws stay in support).
    """
    e = -torch.log(u)
    return -torch.log(sigma) + (1 + xi) * torch.log(e) - e


def _moment_factors(xi: Tensor) -> tuple[Tensor, Tensor]:
    """``(g1 - 1) / xi`` and ``(g2 - g1**2) / xi**2``, in float64, smooth at ``xi = 0``."""
    x = xi.double()
    small = x.abs() < _SERIES_TOL
    x_safe = torch.where(small, torch.full_like(x, 0.25), x)
    g1 = torch.exp(torch.lgamma(1 - x_safe))
    g2 = torch.exp(torch.lgamma(1 - 2 * x_safe))
    gamma, zeta2 = 0.5772156649015329, math.pi**2 / 6
    mean = torch.where(small, gamma + (gamma**2 + zeta2) / 2 * x, (g1 - 1) / x_safe)
    var = torch.where(small, zeta2 + 2 * (_ZETA3 + gamma * zeta2) * x, (g2 - g1**2) / x_safe**2)
    inf = torch.full_like(x, math.inf)
    return torch.where(x < 1, mean, inf).to(xi.dtype), torch.where(x < 0.5, var, inf).to(xi.dtype)


def gev_mean(mu: Tensor, sigma: Tensor, xi: Tensor) -> Tensor:
    """GEV mean ``mu + sigma (g1 - 1) / xi``; ``mu + sigma * euler_gamma`` at ``xi = 0``.

    ``+inf`` for ``xi >= 1``.

    Examples
    --------
    >>> gev_mean(torch.tensor(0.0), torch.tensor(1.0), torch.tensor([0.0, -0.5]))
    tensor([0.5772, 0.2275])
    """
    return mu + sigma * _moment_factors(xi)[0]


def gev_variance(sigma: Tensor, xi: Tensor) -> Tensor:
    """GEV variance ``sigma**2 (g2 - g1**2) / xi**2``; ``sigma**2 pi**2 / 6`` at ``xi = 0``.

    ``+inf`` for ``xi >= 1/2``.

    Examples
    --------
    >>> gev_variance(torch.tensor(1.0), torch.tensor([0.0, -0.5]))
    tensor([1.6449, 0.8584])
    """
    return sigma**2 * _moment_factors(xi)[1]


def _gaussian_latent(mean: Tensor, log_var: Tensor, training: bool) -> LatentSample:
    """A draw of N(mean, exp(log_var)) (``mean`` in eval mode) and its KL to N(0, I)."""
    z = mean + torch.exp(log_var / 2) * torch.randn_like(mean) if training else mean
    kl = 0.5 * (mean**2 + log_var.exp() - 1 - log_var).sum(-1)
    return LatentSample(z=z, mean=mean, kl=kl)


class DeterministicLatent(nn.Module):
    """No noise, no KL: ``z = mean = Linear(h)`` (the plain autoencoder's code).

    Examples
    --------
    >>> out = DeterministicLatent(8, 2)(torch.zeros(4, 8))
    >>> out.z.shape, out.kl.tolist()
    (torch.Size([4, 2]), [0.0, 0.0, 0.0, 0.0])
    """

    def __init__(self, in_features: int, latent_dim: int) -> None:
        super().__init__()
        self.loc = nn.Linear(in_features, latent_dim)

    def forward(self, h: Tensor) -> LatentSample:
        """Encode ``h`` of shape ``(batch, in_features)``."""
        mean = self.loc(h)
        return LatentSample(z=mean, mean=mean, kl=mean.new_zeros(mean.shape[:-1]))


class GaussianLatent(nn.Module):
    """Diagonal Gaussian ``N(mu, exp(logvar))`` with the analytic KL to N(0, I).

    Examples
    --------
    >>> out = GaussianLatent(8, 2)(torch.zeros(4, 8))
    >>> out.z.shape, out.kl.shape
    (torch.Size([4, 2]), torch.Size([4]))
    """

    def __init__(self, in_features: int, latent_dim: int) -> None:
        super().__init__()
        self.loc = nn.Linear(in_features, latent_dim)
        self.log_var = nn.Linear(in_features, latent_dim)

    def forward(self, h: Tensor) -> LatentSample:
        """Encode ``h`` of shape ``(batch, in_features)``."""
        return _gaussian_latent(self.loc(h), self.log_var(h), self.training)


class HierarchicalGaussianLatent(GaussianLatent):
    """`GaussianLatent` under a learned hierarchical prior (Klushyn et al. 2019).

    ``kl`` is the Jacobsen & Duraisamy (2022) Eq. 12-14 bound of
    `climlatent.models.priors.HierarchicalPrior` at the draw ``z`` (at ``z = mean`` in
    eval mode) instead of the analytic KL to N(0, I); the prior's networks train with
    the encoder.

    Examples
    --------
    >>> out = HierarchicalGaussianLatent(8, 2)(torch.zeros(4, 8))
    >>> out.z.shape, out.kl.shape
    (torch.Size([4, 2]), torch.Size([4]))
    """

    def __init__(self, in_features: int, latent_dim: int) -> None:
        super().__init__(in_features, latent_dim)
        self.prior = HierarchicalPrior(latent_dim)

    def forward(self, h: Tensor) -> LatentSample:
        """Encode ``h`` of shape ``(batch, in_features)``."""
        mean, log_var = self.loc(h), self.log_var(h)
        sample = _gaussian_latent(mean, log_var, self.training)
        kl = self.prior.regularisation(sample.z, mean, log_var)
        return LatentSample(z=sample.z, mean=mean, kl=kl)


class _GEVHeads(nn.Module):
    """Location and scale heads and the shape ``xi`` (fixed, or learned in a range)."""

    def __init__(
        self,
        in_features: int,
        latent_dim: int,
        xi: float = -0.5,
        learn_xi: bool = False,
        xi_range: tuple[float, float] = (-0.6, 0.2),
        min_scale: float = 1e-4,
    ) -> None:
        super().__init__()
        lo, hi = xi_range if learn_xi else (xi, xi)
        inside = not learn_xi or lo < xi < hi
        if not (inside and XI_LIMITS[0] < lo and hi < XI_LIMITS[1]):
            raise ValueError(
                f"xi={xi} (learn_xi={learn_xi}, xi_range={xi_range}) must lie in the open "
                f"interval {XI_LIMITS}, and strictly inside xi_range when learned"
            )
        self.loc = nn.Linear(in_features, latent_dim)
        self.scale = nn.Linear(in_features, latent_dim)
        self.min_scale = min_scale
        self.xi_range = (lo, hi)
        if learn_xi:
            logit = math.log((xi - lo) / (hi - xi))
            self.xi_logit = nn.Parameter(torch.full((latent_dim,), logit))
        else:
            self.register_buffer("xi_fixed", torch.full((latent_dim,), xi))

    @property
    def shape_xi(self) -> Tensor:
        """The ``(latent_dim,)`` GEV shape, climate sign (``xi > 0``: heavy tail)."""
        if hasattr(self, "xi_logit"):
            lo, hi = self.xi_range
            return lo + (hi - lo) * torch.sigmoid(self.xi_logit)
        return self.xi_fixed

    def gev_params(self, h: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """``(mu, sigma, xi)`` of shape ``(batch, latent_dim)`` for features ``h``."""
        mu = self.loc(h)
        sigma = F.softplus(self.scale(h)) + self.min_scale
        return mu, sigma, self.shape_xi.expand_as(mu)


class GEVLatent(_GEVHeads):
    """True GEV latent: inverse-CDF draws and a Monte Carlo KL to N(0, I).

    ``mean`` (and ``z`` in eval mode) is the GEV mean `gev_mean`. The KL is estimated
    in eval mode too (it stays random). ``log q`` at a draw equals `gev_log_prob`; it is
    computed from the uniform level, so float32 draws near the upper endpoint keep a
    finite density.

    Parameters
    ----------
    in_features, latent_dim : int
        Sizes of the encoder's features and of the latent code.
    xi : float
        Shape (climate sign), fixed at the seed's -0.5 by default; the start if learned.
    learn_xi : bool
        Learn one ``xi`` per latent dim within ``xi_range`` (see the module notes).
    xi_range : tuple of float
        Range of a learned ``xi``.
    min_scale : float
        Floor of ``sigma = softplus(.) + min_scale``.
    n_kl_samples : int
        Draws averaged in the KL estimate ``log q(z) - log p(z)``; the first is ``z``.

    Examples
    --------
    >>> torch.manual_seed(0) and None
    >>> latent = GEVLatent(8, 2, n_kl_samples=4)
    >>> out = latent(torch.zeros(5, 8))
    >>> out.z.shape, out.kl.shape
    (torch.Size([5, 2]), torch.Size([5]))
    >>> bool(torch.equal(latent.eval()(torch.zeros(5, 8)).z, out.mean))
    True
    """

    def __init__(
        self, in_features: int, latent_dim: int, *, n_kl_samples: int = 1, **gev_options
    ) -> None:
        super().__init__(in_features, latent_dim, **gev_options)
        if n_kl_samples < 1:
            raise ValueError(f"n_kl_samples must be at least 1, not {n_kl_samples}")
        self.n_kl_samples = n_kl_samples

    def forward(self, h: Tensor) -> LatentSample:
        """Encode ``h`` of shape ``(batch, in_features)``."""
        mu, sigma, xi = self.gev_params(h)
        u = _uniform(torch.Size((self.n_kl_samples, *mu.shape)), mu, None)
        draws = gev_quantile(u, mu, sigma, xi)
        log_p = -0.5 * (draws**2 + _LOG_2PI)
        kl = (_gev_log_prob_at_quantile(u, sigma, xi) - log_p).mean(0).sum(-1)
        mean = gev_mean(mu, sigma, xi)
        return LatentSample(z=draws[0] if self.training else mean, mean=mean, kl=kl)


class GEVMomentsLatent(_GEVHeads):
    """The seed's rule: a Gaussian draw with the GEV's mean and variance.

    ``z = E + scale_factor * eps`` with ``E = gev_mean(mu, sigma, xi)`` and
    ``scale_factor = sqrt(Var)`` (``scale="std"``, so that ``Var(z) = Var``) or ``Var``
    itself (``scale="variance"``, the seed's literal ``Z = E(x) + Var(x) * error``).
    The KL is the exact Gaussian one for the noise scale in use. Other parameters as
    in `GEVLatent`.

    Examples
    --------
    >>> latent = GEVMomentsLatent(8, 2, scale="variance")
    >>> out = latent(torch.zeros(5, 8))
    >>> out.z.shape, out.kl.shape
    (torch.Size([5, 2]), torch.Size([5]))
    """

    def __init__(
        self, in_features: int, latent_dim: int, *, scale: str = "std", **gev_options
    ) -> None:
        super().__init__(in_features, latent_dim, **gev_options)
        if scale not in ("std", "variance"):
            raise ValueError(f"scale must be 'std' or 'variance', not {scale!r}")
        self.noise_scale = scale

    def forward(self, h: Tensor) -> LatentSample:
        """Encode ``h`` of shape ``(batch, in_features)``."""
        mu, sigma, xi = self.gev_params(h)
        mean, var = gev_mean(mu, sigma, xi), gev_variance(sigma, xi)
        log_var = var.log() if self.noise_scale == "std" else 2 * var.log()
        return _gaussian_latent(mean, log_var, self.training)


LATENT_KINDS: dict[str, type[nn.Module]] = {
    "none": DeterministicLatent,
    "gaussian": GaussianLatent,
    "gaussian_hp": HierarchicalGaussianLatent,
    "gev": GEVLatent,
    "gev_moments": GEVMomentsLatent,
}


def make_latent(kind: str, latent_dim: int, in_features: int, **options) -> nn.Module:
    """Build the latent module of ``kind`` (a key of `LATENT_KINDS`).

    ``in_features`` is the size of the encoder's feature vector; ``options`` go to the
    class (e.g. ``xi``, ``learn_xi``, ``xi_range``, ``n_kl_samples``, ``scale``).

    Examples
    --------
    >>> latent = make_latent("gev", latent_dim=3, in_features=16, learn_xi=True)
    >>> latent.shape_xi
    tensor([-0.5000, -0.5000, -0.5000], grad_fn=<AddBackward0>)
    >>> make_latent("student", 3, 16)
    Traceback (most recent call last):
    ...
    ValueError: latent kind must be one of ['gaussian', 'gaussian_hp', ...], not 'student'
    """
    if kind not in LATENT_KINDS:
        raise ValueError(f"latent kind must be one of {sorted(LATENT_KINDS)}, not {kind!r}")
    return LATENT_KINDS[kind](in_features, latent_dim, **options)
