"""Latent priors of a Gaussian VAE and the regularisation loss each implies.

A prior turns one reparameterised draw ``z ~ q(z|y) = N(mean, exp(log_var))`` into the
per-sample regularisation term of the VAE loss:

- `StandardNormalPrior`: ``KL[q(z|y) || N(0, I)]`` in closed form.
- `HierarchicalPrior` (Klushyn et al. 2019, as in Jacobsen & Duraisamy 2022, Sec. 2.3):
  a learned prior ``p(z) = E_{p(xi)}[p_pi(z | xi)]`` with a standard-normal sub-prior
  ``p(xi) = N(0, I)``, a prior decoder ``p_pi(z | xi)`` and a prior encoder (its
  variational posterior) ``q_gamma(xi | z)``. Jensen's inequality bounds
  ``-log p(z)`` and so the regularisation loss (the seed's Eq. 12-14):

      log q(z|y) + KL[q_gamma(xi|z) || N(0, I)] - E_{q_gamma(xi|z)}[log p_pi(z|xi)],

  estimated with the one draw of ``z`` and one draw of ``xi``. The prior is no longer
  rotation invariant, which is what lets the ELBO prefer an axis-aligned latent.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from climlatent.draws import Draws, standard_normal_rows

__all__ = [
    "HierarchicalPrior",
    "StandardNormalPrior",
    "gaussian_kl_standard",
    "gaussian_log_prob",
    "make_prior",
    "prior_draws",
]

LOG_2PI = math.log(2 * math.pi)


def gaussian_log_prob(x: Tensor, mean: Tensor, log_var: Tensor) -> Tensor:
    """Log density of a diagonal Gaussian, summed over the last dimension.

    Examples
    --------
    >>> round(float(gaussian_log_prob(torch.zeros(1, 1), torch.zeros(1, 1),
    ...                               torch.zeros(1, 1))), 4)
    -0.9189
    """
    return -0.5 * (LOG_2PI + log_var + (x - mean) ** 2 * torch.exp(-log_var)).sum(-1)


def gaussian_kl_standard(mean: Tensor, log_var: Tensor) -> Tensor:
    """``KL[N(mean, exp(log_var)) || N(0, I)]``, summed over the last dimension.

    Examples
    --------
    >>> float(gaussian_kl_standard(torch.zeros(1, 2), torch.zeros(1, 2)))
    0.0
    """
    return 0.5 * (mean**2 + log_var.exp() - 1 - log_var).sum(-1)


class StandardNormalPrior(nn.Module):
    """``p(z) = N(0, I)``: the closed-form KL regularisation.

    Examples
    --------
    >>> prior = StandardNormalPrior()
    >>> float(prior.regularisation(torch.zeros(1, 2), torch.ones(1, 2), torch.zeros(1, 2)))
    1.0
    """

    def regularisation(self, z: Tensor, mean: Tensor, log_var: Tensor) -> Tensor:
        """Per-sample ``KL[q(z|y) || p(z)]`` (``z`` is unused: the KL is exact)."""
        return gaussian_kl_standard(mean, log_var)

    def noise_widths(self, latent_dim: int) -> tuple[int, ...]:
        """The standard normals a draw takes: ``z`` itself."""
        return (latent_dim,)

    def from_normals(self, eps: Tensor) -> Tensor:
        """Draws of ``z`` from standard normals ``(n, latent_dim)``: themselves."""
        return eps


def _gaussian_net(n_in: int, n_out: int, hidden: int) -> nn.Sequential:
    """Small MLP returning mean and log-variance stacked on the last dimension."""
    return nn.Sequential(
        nn.Linear(n_in, hidden), nn.Tanh(), nn.Linear(hidden, hidden), nn.Tanh(),
        nn.Linear(hidden, 2 * n_out),
    )  # fmt: skip


class HierarchicalPrior(nn.Module):
    """Learned hierarchical prior with a standard-normal sub-prior.

    Parameters
    ----------
    latent_dim : int
        Size of ``z``.
    sub_latent_dim : int, optional
        Size of ``xi``; ``latent_dim`` by default.
    hidden : int
        Width of the prior encoder and decoder MLPs.

    Examples
    --------
    >>> prior = HierarchicalPrior(2)
    >>> z, mean, log_var = torch.randn(4, 2), torch.zeros(4, 2), torch.zeros(4, 2)
    >>> prior.regularisation(z, mean, log_var).shape
    torch.Size([4])
    >>> prior_draws(prior, 3, 2, seed=0).shape
    torch.Size([3, 2])
    """

    def __init__(self, latent_dim: int, sub_latent_dim: int | None = None, hidden: int = 32):
        super().__init__()
        self.sub_latent_dim = sub_latent_dim or latent_dim
        self.prior_encoder = _gaussian_net(latent_dim, self.sub_latent_dim, hidden)
        self.prior_decoder = _gaussian_net(self.sub_latent_dim, latent_dim, hidden)

    def posterior(self, z: Tensor) -> tuple[Tensor, Tensor]:
        """Mean and log-variance of ``q_gamma(xi | z)``."""
        return self.prior_encoder(z).chunk(2, dim=-1)

    def conditional(self, xi: Tensor) -> tuple[Tensor, Tensor]:
        """Mean and log-variance of ``p_pi(z | xi)``."""
        return self.prior_decoder(xi).chunk(2, dim=-1)

    def regularisation(self, z: Tensor, mean: Tensor, log_var: Tensor) -> Tensor:
        """Per-sample bound of ``KL[q(z|y) || p(z)]`` from one draw of ``z`` and ``xi``."""
        xi_mean, xi_log_var = self.posterior(z)
        xi = xi_mean + torch.randn_like(xi_mean) * (0.5 * xi_log_var).exp()
        z_mean, z_log_var = self.conditional(xi)
        return (
            gaussian_log_prob(z, mean, log_var)
            + gaussian_kl_standard(xi_mean, xi_log_var)
            - gaussian_log_prob(z, z_mean, z_log_var)
        )

    def noise_widths(self, latent_dim: int) -> tuple[int, ...]:
        """The standard normals a draw takes: ``xi``, then ``z``'s given ``xi``."""
        return (self.sub_latent_dim, latent_dim)

    def from_normals(self, xi: Tensor, eps: Tensor) -> Tensor:
        """Draws of ``z``: ``xi ~ N(0, I)``, then ``z = mean(xi) + sd(xi) * eps``."""
        z_mean, z_log_var = self.conditional(xi)
        return z_mean + eps * (0.5 * z_log_var).exp()


def prior_draws(
    prior: StandardNormalPrior | HierarchicalPrior,
    n: int,
    latent_dim: int,
    seed: int,
    device: torch.device | str = "cpu",
) -> Tensor:
    """``n`` draws of ``z`` from ``prior`` on ``device`` (the prior's).

    Draw ``i`` takes the standard normals of row ``i`` of the Philox streams of ``seed``
    (`climlatent.draws.standard_normal_rows`, one stream per `noise_widths` entry),
    so the first ``k`` of ``n`` draws are the draws of ``n = k`` (to the round-off of
    a hierarchical prior's network on another batch size), on any device.

    Examples
    --------
    >>> prior = HierarchicalPrior(2)
    >>> bool(torch.allclose(prior_draws(prior, 5, 2, seed=1)[:3], prior_draws(prior, 3, 2, 1)))
    True
    """
    Draws(n, seed)  # a positive int and a seed in [0, 2**64): 1.5 would draw as 1
    normals = [
        torch.from_numpy(standard_normal_rows(seed, 0, 0, n, width, stream)).to(device)
        for stream, width in enumerate(prior.noise_widths(latent_dim))
    ]
    return prior.from_normals(*normals)


def make_prior(kind: str, latent_dim: int) -> nn.Module:
    """The prior named ``"standard"`` or ``"hierarchical"``.

    Examples
    --------
    >>> type(make_prior("hierarchical", 2)).__name__
    'HierarchicalPrior'
    """
    if kind == "standard":
        return StandardNormalPrior()
    if kind == "hierarchical":
        return HierarchicalPrior(latent_dim)
    raise ValueError(f"unknown prior {kind!r}: use 'standard' or 'hierarchical'")
