r"""VAE-DLM: a VAE whose latent manifold evolves under a learned linear geometric flow.

After Gracyk, "Regularization in latent spaces with high-dimensional linear geometric
flows for variational autoencoders" (seed 004). A trajectory :math:`x_t`,
:math:`t \in [0, T]`, of a discretised PDE (here ``T = 1`` after normalising time) is
modelled in three stages:

1. an **encoder** maps the *initial* field :math:`x_0` to a Gaussian over local
   coordinates :math:`u \in \mathbb{R}^d` (intrinsic dimension ``d``, where the prior
   :math:`p(u) = N(0, I)` lives): :math:`\tilde q(u | x_0)`;
2. a **chart** :math:`z_t = \varphi(u, t) \in \mathbb{R}^D` (extrinsic dimension ``D``)
   places the point on the time-evolving latent manifold
   :math:`\mathcal{M}_t = \varphi(\mathbb{R}^d, t)`;
3. a **decoder** maps :math:`z_t` to the field :math:`x_t` (Gaussian, learned constant
   variance).

A metric network gives a Riemannian metric :math:`g(u, t) = L L^\top` (``d x d``,
positive semi-definite) and a generator network a matrix :math:`A(u, t)`, with
:math:`\Lambda = A^\top A`. The per-sample objective, in nats, is the seed's training
loss

.. math::

    \alpha\,E_{t, u}[-\log p(x_t | z_t)] + \beta\,KL(\tilde q(u|x_0) \| p(u))
    + \gamma_{geo}\,E_{t, u}\|(\partial_t + \Lambda(u, t))\,g(u, t)
        + \alpha_{flow}\,(g(u, t) - \Sigma(u))\|_F^2
    + \gamma_{metric}\,E_{t, u}\|g(u, t) - J^\top J\|_F^2,

with :math:`t` uniform over the trajectory's saved times, :math:`u` one
reparameterised draw, :math:`\partial_t g` by forward-mode automatic differentiation,
:math:`J = \partial\varphi / \partial u` (``D x d``) the Jacobian of the chart, so
that :math:`J^\top J` is the metric that :math:`\mathcal{M}_t` inherits from
:math:`\mathbb{R}^D`, and :math:`\Sigma(u) = 4 (1 + |u|^2)^{-2} I` the round unit
sphere in stereographic coordinates (the seed's baseline metric). The seed writes
:math:`\alpha` for both the reconstruction weight and the relaxation rate of the
flow; they are two settings here (``alpha`` and ``flow_alpha``). The minimised
``loss`` is the batch mean divided by the number of values per field, as in
:class:`climlatent.models.vae.GaussianVAE`.

The seed compares three models, all three options of :class:`GeometricFlowVAE`:

- the **VAE-DLM** (``flow=True``); ``steady=False`` drops the flow's steady term
  :math:`\alpha_{flow}(g - \Sigma)` (the relaxation towards the baseline metric) from
  the residual, the seed's ablation ("the Riemannian metric without the steady term
  is near degenerate");
- the **extended VAE** (``flow=False``), "a VAE endowed with identical architecture"
  (the author's README): encoder, chart and decoder as above, the two geometric
  terms not computed (weight exactly 0);
- the **VAE** (``flow=False, manifold=False``), the traditional one: no manifold
  stage, the decoder reads :math:`(u, t)` directly.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor, nn
from torch.func import jacfwd, jvp, vmap

from climlatent.models.priors import LOG_2PI, gaussian_kl_standard

__all__ = [
    "GeometricFlowVAE",
    "flow_residual",
    "induced_metric",
    "sphere_metric",
    "time_derivative",
]

LOG_VAR_RANGE = (-12.0, 8.0)
MatrixField = Callable[[Tensor, Tensor], Tensor]


def sphere_metric(u: Tensor) -> Tensor:
    r"""Metric of the unit sphere in stereographic coordinates, :math:`4(1+|u|^2)^{-2} I`.

    Parameters
    ----------
    u : torch.Tensor
        Local coordinates, shape ``(batch, d)``.

    Returns
    -------
    torch.Tensor
        Shape ``(batch, d, d)``.

    Examples
    --------
    >>> sphere_metric(torch.zeros(1, 2))
    tensor([[[4., 0.],
             [0., 4.]]])
    """
    scale = 4.0 / (1.0 + (u * u).sum(-1)) ** 2
    eye = torch.eye(u.shape[-1], dtype=u.dtype, device=u.device)
    return scale[:, None, None] * eye


def time_derivative(field: MatrixField, u: Tensor, t: Tensor) -> tuple[Tensor, Tensor]:
    r"""A field :math:`f(u, t)` and :math:`\partial_t f`, by forward-mode autodiff.

    Parameters
    ----------
    field : callable
        ``(u (batch, d), t (batch,)) -> Tensor (batch, ...)``, each row depending on
        its own ``u`` and ``t`` only.
    u, t : torch.Tensor
        Coordinates ``(batch, d)`` and times ``(batch,)``.

    Returns
    -------
    value, derivative : torch.Tensor
        ``f(u, t)`` and its time derivative, same shape; both differentiable with
        respect to parameters and ``u``.

    Examples
    --------
    >>> t = torch.tensor([0.0, 1.0])
    >>> time_derivative(lambda u, t: u * t[:, None] ** 2, torch.ones(2, 1), t)[1]
    tensor([[0.],
            [2.]])
    """
    return jvp(lambda time: field(u, time), (t,), (torch.ones_like(t),))


def induced_metric(chart: MatrixField, u: Tensor, t: Tensor) -> Tensor:
    r"""Metric :math:`J^\top J` induced on the manifold by the chart, :math:`J = \partial_u z`.

    Parameters
    ----------
    chart : callable
        ``(u (batch, d), t (batch,)) -> z (batch, D)``, rows independent.
    u, t : torch.Tensor
        Coordinates ``(batch, d)`` and times ``(batch,)``.

    Returns
    -------
    torch.Tensor
        ``(batch, d, d)``; differentiable (the Jacobian comes from ``jacfwd``).

    Examples
    --------
    >>> w = torch.tensor([[1.0, 0.0], [0.0, 2.0], [1.0, 1.0]])  # z = W u
    >>> induced_metric(lambda u, t: u @ w.T, torch.zeros(1, 2), torch.zeros(1))
    tensor([[[2., 1.],
             [1., 5.]]])
    """

    def single(ui: Tensor, ti: Tensor) -> Tensor:
        return chart(ui[None], ti[None])[0]

    jacobian = vmap(jacfwd(single, argnums=0))(u, t)  # (batch, D, d)
    return jacobian.transpose(-1, -2) @ jacobian


def flow_residual(
    metric: MatrixField,
    generator: MatrixField,
    u: Tensor,
    t: Tensor,
    alpha: float,
    baseline: Callable[[Tensor], Tensor] = sphere_metric,
) -> Tensor:
    r"""Residual :math:`(\partial_t + \Lambda)\,g + \alpha\,(g - \Sigma)` of the linear flow.

    Parameters
    ----------
    metric : callable
        :math:`g(u, t)`: ``(batch, d), (batch,) -> (batch, d, d)``.
    generator : callable
        :math:`\Lambda(u, t)`: same signature.
    u, t : torch.Tensor
        Coordinates ``(batch, d)`` and times ``(batch,)``.
    alpha : float
        Relaxation rate towards the baseline metric; 0 drops the steady term (the
        baseline is then not evaluated).
    baseline : callable
        :math:`\Sigma(u)`; the sphere metric by default.

    Returns
    -------
    torch.Tensor
        ``(batch, d, d)``; zero where :math:`g` solves the flow.

    Examples
    --------
    With :math:`\Lambda = 0` and :math:`\alpha = 0` a constant metric is a solution:

    >>> g = lambda u, t: torch.eye(2).expand(len(t), 2, 2)
    >>> zero = lambda u, t: torch.zeros(len(t), 2, 2)
    >>> flow_residual(g, zero, torch.zeros(3, 2), torch.rand(3), alpha=0.0).abs().max()
    tensor(0.)
    """
    value, rate = time_derivative(metric, u, t)
    residual = rate + generator(u, t) @ value
    return residual + alpha * (value - baseline(u)) if alpha else residual


def _mlp(n_in: int, hidden: int, n_out: int, activation: type[nn.Module]) -> nn.Sequential:
    return nn.Sequential(
        nn.Linear(n_in, hidden), activation(), nn.Linear(hidden, hidden), activation(),
        nn.Linear(hidden, n_out),
    )  # fmt: skip


class GeometricFlowVAE(nn.Module):
    """VAE-DLM on trajectories ``(batch, n_times, n_space)``, trained by `training.fit`.

    Parameters
    ----------
    n_space : int
        Values per field (grid points).
    intrinsic_dim, extrinsic_dim : int
        Sizes of the local coordinates ``u`` and of the manifold points ``z_t``.
    hidden : int
        Width of the encoder and decoder MLPs (two hidden layers, SiLU).
    geometry_hidden : int
        Width of the chart, metric and generator MLPs (two hidden layers, tanh).
    flow : bool
        Train with the two geometric terms; False gives the extended VAE (the same
        architecture without them).
    manifold : bool
        Decode through the chart ``z_t = phi(u, t)``; False gives the traditional VAE,
        whose decoder reads ``(u, t)`` (no chart, metric or generator network; needs
        ``flow=False``).
    steady : bool
        Keep the steady term ``flow_alpha (g - Sigma)`` in the flow residual; False is
        the seed's ablation without it (``flow_alpha`` then unused).
    alpha, beta : float
        Weights of the reconstruction and of the KL term.
    flow_alpha : float
        Relaxation rate of the flow towards the sphere metric.
    gamma_geo, gamma_metric : float
        Weights of the flow residual and of the metric matching (ignored, and set to
        0, when ``flow`` is False).
    times_per_sample : int
        Times drawn per trajectory and batch for the expectation over ``t``.

    Raises
    ------
    ValueError
        ``flow=True`` with ``manifold=False``: the geometric terms live on the chart.

    Examples
    --------
    >>> model = GeometricFlowVAE(n_space=16, intrinsic_dim=2, extrinsic_dim=4, hidden=8,
    ...                          geometry_hidden=8)
    >>> x, t = torch.randn(3, 5, 16), torch.linspace(0, 1, 5).expand(3, 5)
    >>> sorted(model.training_losses((x, t)))
    ['geometric_flow', 'kl', 'loss', 'metric', 'reconstruction']
    >>> model.predict(x[:, 0], torch.tensor([0.0, 0.5])).shape
    torch.Size([3, 2, 16])
    >>> vae = GeometricFlowVAE(n_space=16, intrinsic_dim=2, hidden=8, flow=False,
    ...                        manifold=False)
    >>> sorted(vae.training_losses((x, t))), hasattr(vae, "chart")
    (['kl', 'loss', 'reconstruction'], False)
    """

    def __init__(
        self,
        n_space: int,
        intrinsic_dim: int = 4,
        extrinsic_dim: int = 16,
        hidden: int = 128,
        geometry_hidden: int = 64,
        flow: bool = True,
        manifold: bool = True,
        steady: bool = True,
        alpha: float = 1.0,
        beta: float = 1.0,
        flow_alpha: float = 1.0,
        gamma_geo: float = 1.0,
        gamma_metric: float = 1.0,
        times_per_sample: int = 4,
    ) -> None:
        super().__init__()
        if flow and not manifold:
            raise ValueError(
                "flow=True needs manifold=True: the geometric terms are those of the chart; "
                "the traditional VAE is flow=False, manifold=False"
            )
        d, dd = intrinsic_dim, extrinsic_dim
        self.n_space, self.intrinsic_dim, self.extrinsic_dim = n_space, d, dd
        self.encoder = _mlp(n_space, hidden, 2 * d, nn.SiLU)
        self.manifold, self.steady = bool(manifold), bool(steady)
        if self.manifold:
            self.chart = _mlp(d + 1, geometry_hidden, dd, nn.Tanh)
            self.decoder = _mlp(dd, hidden, n_space, nn.SiLU)
            self.metric_net = _mlp(d + 1, geometry_hidden, d * (d + 1) // 2, nn.Tanh)
            self.generator_net = _mlp(d + 1, geometry_hidden, d * d, nn.Tanh)
            rows, cols = torch.tril_indices(d, d)
            placement = torch.zeros(len(rows), d * d)
            placement[torch.arange(len(rows)), rows * d + cols] = 1.0
            self.register_buffer("tril_placement", placement, persistent=False)
        else:
            self.decoder = _mlp(d + 1, hidden, n_space, nn.SiLU)
        self.output_log_var = nn.Parameter(torch.zeros(()))
        self.flow = bool(flow)
        self.alpha, self.beta, self.flow_alpha = float(alpha), float(beta), float(flow_alpha)
        self.gamma_geo = float(gamma_geo) if self.flow else 0.0
        self.gamma_metric = float(gamma_metric) if self.flow else 0.0
        self.times_per_sample = int(times_per_sample)

    # -- the maps ----------------------------------------------------------------------

    def posterior(self, x0: Tensor) -> tuple[Tensor, Tensor]:
        """Mean and log-variance of ``q(u | x_0)`` from initial fields ``(batch, n_space)``."""
        mean, log_var = self.encoder(x0).chunk(2, dim=-1)
        return mean, log_var.clamp(*LOG_VAR_RANGE)

    def encode(self, x0: Tensor) -> Tensor:
        """Posterior means of the local coordinates of initial fields."""
        return self.posterior(x0)[0]

    def manifold_point(self, u: Tensor, t: Tensor) -> Tensor:
        """The chart ``z_t = phi(u, t)``: ``(batch, d), (batch,) -> (batch, D)``."""
        return self.chart(torch.cat([u, t[:, None].to(u.dtype)], dim=-1))

    def decode(self, u: Tensor, t: Tensor) -> Tensor:
        """Fields at times ``t`` ``(batch,)`` of local coordinates ``u`` ``(batch, d)``."""
        if self.manifold:
            return self.decoder(self.manifold_point(u, t))
        return self.decoder(torch.cat([u, t[:, None].to(u.dtype)], dim=-1))

    def metric(self, u: Tensor, t: Tensor) -> Tensor:
        """The learned metric ``g(u, t) = L L^T``, ``(batch, d, d)``."""
        d = self.intrinsic_dim
        entries = self.metric_net(torch.cat([u, t[:, None].to(u.dtype)], dim=-1))
        lower = (entries @ self.tril_placement.to(entries)).view(-1, d, d)
        return lower @ lower.transpose(-1, -2)

    def generator(self, u: Tensor, t: Tensor) -> Tensor:
        """The flow's generator ``Lambda(u, t) = A^T A``, ``(batch, d, d)``."""
        d = self.intrinsic_dim
        a = self.generator_net(torch.cat([u, t[:, None].to(u.dtype)], dim=-1)).view(-1, d, d)
        return a.transpose(-1, -2) @ a

    def predict(self, x0: Tensor, times: Tensor) -> Tensor:
        """Fields ``(batch, n_times, n_space)`` at ``times`` ``(n_times,)`` from ``x_0``."""
        u = self.encode(x0)
        n, m = len(u), len(times)
        flat_u = u.repeat_interleave(m, dim=0)
        flat_t = times.to(u).repeat(n)
        return self.decode(flat_u, flat_t).view(n, m, -1)

    # -- the loss ----------------------------------------------------------------------

    def geometric_terms(self, u: Tensor, t: Tensor) -> tuple[Tensor, Tensor]:
        """Per-row squared Frobenius norms of the flow residual and of ``g - J^T J``."""
        relaxation = self.flow_alpha if self.steady else 0.0
        residual = flow_residual(self.metric, self.generator, u, t, relaxation)
        mismatch = self.metric(u, t) - induced_metric(self.manifold_point, u, t)
        return residual.pow(2).sum((-1, -2)), mismatch.pow(2).sum((-1, -2))

    def training_losses(self, batch: tuple[Tensor, ...]) -> dict[str, Tensor]:
        """The seed's loss on trajectories ``(batch, n_times, n_space)`` and their times.

        Draws the reparameterisation noise and ``times_per_sample`` saved times per
        trajectory (uniform over its saved times, the discrete ``t ~ U[0, T]``), then
        returns :meth:`loss_terms` of these draws.
        """
        x, times = batch[0], batch[1]  # (batch, n_times, n_space), (batch, n_times)
        n, n_times = x.shape[:2]
        noise = torch.randn(n, self.intrinsic_dim, dtype=x.dtype, device=x.device)
        index = torch.randint(0, n_times, (n, self.times_per_sample), device=x.device)
        return self.loss_terms(x, times, noise, index)

    def loss_terms(
        self, x: Tensor, times: Tensor, noise: Tensor, index: Tensor
    ) -> dict[str, Tensor]:
        """The loss terms at given draws of ``u`` and ``t``.

        Parameters
        ----------
        x, times : torch.Tensor
            Trajectories ``(batch, n_times, n_space)`` and their times ``(batch, n_times)``.
        noise : torch.Tensor
            Standard-normal draws ``(batch, intrinsic_dim)``: ``u = mean + noise * std``.
        index : torch.Tensor
            Indices ``(batch, k)`` of the saved times of each trajectory to fit; the
            geometric terms are evaluated at the same ``(u, t)``.

        Returns
        -------
        dict of torch.Tensor
            ``reconstruction`` (negative log-likelihood per value), ``kl``,
            ``geometric_flow`` and ``metric`` (per ``(u, t)``, only with ``flow``), and
            the minimised ``loss`` (per value).

        Examples
        --------
        >>> model = GeometricFlowVAE(n_space=4, intrinsic_dim=2, hidden=4, flow=False,
        ...                          manifold=False)
        >>> terms = model.loss_terms(torch.zeros(1, 3, 4), torch.zeros(1, 3),
        ...                          torch.zeros(1, 2), torch.tensor([[0, 2]]))
        >>> bool(terms["loss"] == (4 * terms["reconstruction"] + terms["kl"]) / 4)
        True
        """
        n, k = index.shape
        mean, log_var = self.posterior(x[:, 0])
        u = mean + noise * (0.5 * log_var).exp()
        t = times.gather(1, index).reshape(-1)
        target = x.gather(1, index[..., None].expand(n, k, x.shape[-1])).reshape(n * k, -1)
        u_rep = u.repeat_interleave(k, dim=0)
        prediction = self.decode(u_rep, t)
        log_var_out = self.output_log_var
        values = 0.5 * (LOG_2PI + log_var_out + (target - prediction) ** 2 * (-log_var_out).exp())
        nll = values.sum(-1).view(n, k).mean(1)
        kl = gaussian_kl_standard(mean, log_var)
        objective = self.alpha * nll + self.beta * kl
        losses = {"reconstruction": nll.mean() / self.n_space, "kl": kl.mean()}
        if self.flow:
            geo, metric = self.geometric_terms(u_rep, t)
            geo, metric = geo.view(n, k).mean(1), metric.view(n, k).mean(1)
            objective = objective + self.gamma_geo * geo + self.gamma_metric * metric
            losses["geometric_flow"], losses["metric"] = geo.mean(), metric.mean()
        losses["loss"] = objective.mean() / self.n_space
        return losses
