r"""The physics-proxy latent downscaler of seed 000, Section 4.4, as a torch module.

An LLAAE whose latent space is a map on the coarse grid of the physics proxies. With
``T`` the target transform (``log`` for a positive field such as chlorophyll, the
identity otherwise) and ``y = T(Y) / q`` on the fine grid (``q`` a fixed scale):

- encoder ``e``: the latent map has ``C`` channels on the coarse cells, ``z`` of
  shape ``(batch, C, n_coarse)``. Channel 0, the *growth latent*, is the target's own
  coarse anomaly, ``e_0(y) = A y - m``: ``A`` the fixed area-weighted fine-to-coarse
  averaging (conservative weights) and ``m`` its training mean. The other ``C - 1``
  channels are learned: convolutions on the fine image, averaged over each coarse
  cell by ``A``, then a latent head per coarse cell (Gaussian, hierarchical-prior
  Gaussian, GEV or deterministic, as the package's latent kinds) for what the
  coarse anomaly does not say about the fine field;
- proxy predictor ``h``: each driver ``d_k`` passes through its growth law ``g_k``
  (`climlatent.models.proxies`) to ``phi_k = log g_k(d_k)`` (``T = log``: growth laws
  multiply) or ``g_k(d_k)``; channel 0 is the *growth latent*
  ``h_0 = (sum_k phi_k - c) / q`` (unit coefficients, ``c`` the per-cell training
  mean), the other channels a linear map ``h_j = sum_k W_jk phi_k / p + b_j``, ``p``
  the buffer ``growth_scale``: ``q`` where ``T`` is the identity (the ``phi_k`` are
  then in the target's units, and ``W`` learns the same numbers whatever they are),
  1 where ``T = log`` (and in models saved before it);
- decoder ``d``: the latent map is interpolated to the fine grid by a fixed kernel
  ``U`` (bilinear), and ``d(z) = s(x) + w(x) U z_0 + r(U z_{1:})``: a per-cell
  structure ``s``, the growth latent entering linearly (gain ``w = 1`` when
  ``T = log``, so the growth laws keep their physical scale; learned per cell
  otherwise) and a small convolutional network ``r`` of the free channels.

Training alternates the LLAAE losses:
``L1 = |y - d(z)|^2 + alpha |y - d(h(X))|^2 + beta KL`` over encoder, latent head and
decoder, then ``L2 = |e(y) - h(X)|^2`` over the growth laws and ``W, b``. Because
``e_0`` is fixed, ``L2`` on channel 0 is a regression of the coarse target anomaly on
the summed growth terms with unit coefficients (the other channels see the growth
terms as given, so only channel 0 trains the laws): the growth laws' shape parameters
(the exponential's ``b``, the quadratic's ``d / c``) keep their physical meaning and
are identifiable; an overall factor (``a``, ``c``) is not, as it only shifts ``m``. At the end the
encoder is dropped: drivers -> growth laws -> latent -> decoder downscales.

Batches are ``(Y, weight, drivers)``: fine target cells in physical units (invalid
cells filled with a valid placeholder), their data mask, and drivers
``(batch, n_proxies, n_coarse)``; the module applies ``T`` and ``q`` itself, and
``forward`` / ``sample`` return physical values.

When the coarse target ``Y_c`` is known at downscaling time (a climate model's own
coarse field), ``forward`` / ``sample`` take it as ``observed`` ``(batch, n_coarse)``:
channel 0 is then the *observed* growth latent ``T(Y_c) / q - m - o`` in place of
``h_0(X)``, with ``o`` the per-cell mean of ``T(Y_c) / q - m - e_0(y)`` over the
fitting samples (the buffer ``observed_offset``; for ``T = log``, the log of a mean
exceeds the mean of the logs by about half the variance within the coarse cell). The
free channels are still predicted from the drivers.

Seasonal fits (``n_groups > 1``, see :mod:`climlatent.grouping`): the structure
``s``, the residual spreads and the smearing factor are one per group; the growth
laws, the interpolation, the encoder and the refinement are shared. ``forward`` and
``sample`` take each row's group ``(batch,)``; training batches add ``(groups,
counts)``, both ``(batch, k)``, the groups each sample enters and how often (a
day-of-year window puts a sample in several), and a sample's misfit is summed over
its groups as if it were repeated once per group (the shared part of the decoder
runs once per sample). When ``T = log``, ``forward`` is the
conditional mean ``exp(q d(h(X))) * s(x)``, with ``s`` Duan's smearing factor per cell
(the mean of ``exp`` of the log residuals over the fitting samples, the buffer
``log_smearing``; 0, the median, until measured): the median alone is biased low by
about ``sigma^2 / 2`` (4.4 % for a log spread of 0.3).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

import torch
from torch import Tensor, nn

from climlatent.models.conv import GridScatter, ResidualBlock
from climlatent.models.downscaler import group_entries, row_groups
from climlatent.models.interpolation import CoarseToFine
from climlatent.models.latents import make_latent
from climlatent.models.proxies import log_terms

LOSS_NAMES = ("autoencoder", "latent", "reconstruction", "reconstruction_proxy", "kl")


def _conv_net(n_in: int, hidden: int, n_out: int, blocks: int, slope: float) -> nn.Sequential:
    """3x3 convolution to ``hidden`` channels, residual blocks, 1x1 convolution to ``n_out``."""
    return nn.Sequential(
        nn.Conv2d(n_in, hidden, 3, padding=1),
        nn.LeakyReLU(slope),
        *[ResidualBlock(hidden, slope) for _ in range(blocks)],
        nn.Conv2d(hidden, n_out, 1),
    )


class ProxyLatentModel(CoarseToFine):
    """Fine field <-> coarse latent map, with the latent predicted by growth laws.

    Parameters
    ----------
    fine_mask : torch.Tensor
        Boolean ``(H, W)`` mask of the valid fine cells.
    aggregation : torch.Tensor
        ``(n_coarse, n_fine)`` fine-to-coarse averaging weights (rows sum to 1).
    neighbours, weights : torch.Tensor
        ``(n_fine, k)`` coarse-cell indices and weights of the interpolation ``U``.
    proxies : sequence of nn.Module
        One growth law per driver.
    log_growth : bool
        ``T = log`` and ``phi_k = log g_k`` (a positive target whose growth laws
        multiply), or ``T`` and ``phi_k = g_k`` the identity (an additive target).
    scale : float
        ``q``: the scale of ``T(Y)``; the latent is in units of ``q``.
    floor : float
        Smallest target value taken into the log.
    channels : int
        Latent channels ``C`` per coarse cell (at least 1: the growth latent).
    latent : str
        Latent kind (`climlatent.models.latents.LATENT_KINDS`).
    alpha, beta : float
        Weights of the proxy reconstruction and of the KL in ``L1``.
    hidden : int
        Channels of the encoder's and decoder's convolutions.
    residual_blocks : int
        Residual blocks in each convolutional network.
    negative_slope : float
        Leaky ReLU slope.
    latent_options : dict, optional
        Passed to the latent head (e.g. ``{"xi": -0.5}``).
    learn_interpolation : bool
        Train the interpolation weights of ``U`` (initialised bilinear); the gain
        ``w`` then stays at 1.
    n_groups : int
        Seasonal groups, each with its own structure and spreads.

    Examples
    --------
    >>> from climlatent.models.proxies import ExponentialGrowth
    >>> mask = torch.ones(4, 4, dtype=torch.bool)
    >>> aggregation = torch.kron(torch.eye(4), torch.full((1, 4), 0.25))  # toy blocks
    >>> model = ProxyLatentModel(mask, aggregation, torch.zeros(16, 1, dtype=torch.long),
    ...     torch.ones(16, 1), [ExponentialGrowth()], log_growth=True, scale=1.0, channels=2,
    ...     hidden=4)
    >>> model(torch.full((3, 1, 4), 10.0)).shape
    torch.Size([3, 16])
    >>> sorted(model.training_losses((torch.ones(3, 16), torch.ones(3, 16),
    ...     torch.zeros(3, 1, 4))))
    ['autoencoder', 'kl', 'latent', 'reconstruction', 'reconstruction_proxy']
    """

    #: Buffers that models saved before them lack, with the values that keep those
    #: models' numbers (`climlatent.models.downscaler.saved_state`).
    added_buffers: ClassVar[dict[str, float]] = {"growth_scale": 1.0, "term_floor": 1e-12}

    def __init__(
        self,
        fine_mask: Tensor,
        aggregation: Tensor,
        neighbours: Tensor,
        weights: Tensor,
        proxies: Sequence[nn.Module],
        log_growth: bool,
        scale: float,
        floor: float = 1e-12,
        channels: int = 4,
        latent: str = "gaussian",
        alpha: float = 1.0,
        beta: float = 0.1,
        hidden: int = 16,
        residual_blocks: int = 1,
        negative_slope: float = 0.2,
        latent_options: dict | None = None,
        learn_interpolation: bool = False,
        n_groups: int = 1,
    ) -> None:
        if channels < 1:
            raise ValueError(f"channels must be at least 1 (the growth latent), not {channels}")
        n_coarse, n_fine = aggregation.shape
        super().__init__(neighbours, weights, n_coarse, learn_interpolation)
        self.alpha, self.beta = float(alpha), float(beta)
        self.log_growth, self.channels = bool(log_growth), int(channels)
        self.grid = GridScatter(fine_mask)
        self.register_buffer("aggregation", aggregation.float())
        self.register_buffer("scale", torch.tensor(float(scale)))
        self.register_buffer("growth_scale", torch.tensor(1.0))
        self.register_buffer("floor", torch.tensor(float(floor)))
        self.register_buffer("term_floor", torch.full((len(proxies),), 1e-12))  # `term_floors`
        self.register_buffer("growth_centre", torch.zeros(n_coarse))
        self.register_buffer("coarse_centre", torch.zeros(n_coarse))
        self.proxies = nn.ModuleList(proxies)
        self.structure = nn.Parameter(torch.zeros(n_groups, n_fine))
        self.gain = nn.Parameter(
            torch.ones(n_fine), requires_grad=not (log_growth or learn_interpolation)
        )
        free = channels - 1
        self.encoder = self.latent = self.proxy_map = self.refine = None
        if free:
            self.encoder = _conv_net(2, hidden, hidden, residual_blocks, negative_slope)
            self.latent = make_latent(
                latent, in_features=hidden, latent_dim=free, **(latent_options or {})
            )
            self.proxy_map = nn.Conv1d(len(proxies), free, 1)
            self.refine = _conv_net(free, hidden, 1, residual_blocks, negative_slope)
        # residual spreads for stochastic downscaling, set after training
        self.register_buffer("latent_spread", torch.zeros(n_groups, channels, n_coarse))
        self.register_buffer("fine_spread", torch.zeros(n_groups, n_fine))
        self.register_buffer("log_smearing", torch.zeros(n_groups, n_fine))
        self.register_buffer("observed_offset", torch.zeros(n_coarse))

    def transform(self, y: Tensor) -> Tensor:
        """``T(Y) / q``: physical target values to the model's scale."""
        return (torch.log(torch.clamp(y, min=self.floor)) if self.log_growth else y) / self.scale

    def untransform(self, y: Tensor) -> Tensor:
        """The inverse of `transform`."""
        y = y * self.scale
        return torch.exp(y) if self.log_growth else y

    def coarse_anomaly(self, y: Tensor, weight: Tensor) -> Tensor:
        """``e_0(y) = A y - m``: the target's coarse-cell mean anomaly ``(batch, n_coarse)``."""
        total = (weight * y) @ self.aggregation.T
        covered = weight @ self.aggregation.T
        return total / covered.clamp(min=1e-6) - self.coarse_centre

    # -- the three maps ------------------------------------------------------------

    def growth_terms(self, drivers: Tensor) -> Tensor:
        """``phi_k`` per driver: ``(batch, n_proxies, n_coarse)``."""
        terms = [proxy(drivers[:, k]) for k, proxy in enumerate(self.proxies)]
        if self.log_growth:
            terms = log_terms(terms, self.term_floor)
        return torch.stack(terms, dim=1)

    def observed_latent(self, observed: Tensor) -> Tensor:
        """Growth latent ``(batch, n_coarse)`` of a known coarse target (physical units)."""
        return self.transform(observed) - self.coarse_centre - self.observed_offset

    def predict_latent(self, drivers: Tensor, observed: Tensor | None = None) -> Tensor:
        """``h(X)``: the latent map ``(batch, C, n_coarse)`` from the drivers.

        ``observed``: the coarse target, whose `observed_latent` then replaces the
        growth laws' prediction in channel 0.
        """
        phi = self.growth_terms(drivers)
        if observed is None:
            growth = (phi.sum(dim=1, keepdim=True) - self.growth_centre) / self.scale
        else:
            growth = self.observed_latent(observed)[:, None]
        if self.proxy_map is None:
            return growth
        # the growth laws are fitted to channel 0 alone: W and b see them as given
        return torch.cat([growth, self.proxy_map(phi.detach() / self.growth_scale)], dim=1)

    def encode(self, y: Tensor, weight: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """Latent map of fine cells ``y``: a draw and the mean ``(batch, C, n_coarse)``, KL."""
        growth = self.coarse_anomaly(y, weight)[:, None]
        if self.encoder is None:
            return growth, growth, y.new_zeros(y.shape[0])
        image = torch.cat([self.grid.to_image(y), self.grid.to_image(weight)], dim=1)
        features = self.encoder(image).flatten(2)[:, :, self.grid.index]
        coarse = features @ self.aggregation.T  # (batch, hidden, n_coarse)
        batch, hidden, n_coarse = coarse.shape
        sample = self.latent(coarse.transpose(1, 2).reshape(batch * n_coarse, hidden))

        def as_map(t: Tensor) -> Tensor:
            return torch.cat([growth, t.reshape(batch, n_coarse, -1).transpose(1, 2)], dim=1)

        return as_map(sample.z), as_map(sample.mean), sample.kl.reshape(batch, -1).sum(1)

    def decode(self, z: Tensor, group: Tensor | None = None) -> Tensor:
        """``d(z)``: fine cells ``(batch, n_fine)`` from a latent map ``(batch, C, n_coarse)``.

        ``group``: each row's group ``(batch,)``; group 0 when omitted.
        """
        return self.structure[row_groups(group, z)] + self.anomaly(z)

    def anomaly(self, z: Tensor) -> Tensor:
        """``d(z) - s``: the part of the decoder that every group shares."""
        fine = self.interpolate(z)  # (batch, C, n_fine)
        out = self.gain * fine[:, 0]
        if self.refine is not None:
            image = fine.new_zeros(fine.shape[0], self.channels - 1, *self.grid.padded)
            image.flatten(2)[:, :, self.grid.index] = fine[:, 1:]
            out = out + self.refine(image).flatten(2)[:, 0, self.grid.index]
        return out

    def emulate(
        self, drivers: Tensor, group: Tensor | None = None, observed: Tensor | None = None
    ) -> Tensor:
        """``d(h(X))``: the fine field from the drivers (and ``observed``), model scale."""
        return self.decode(self.predict_latent(drivers, observed), group)

    def forward(
        self, drivers: Tensor, group: Tensor | None = None, observed: Tensor | None = None
    ) -> Tensor:
        """The downscaled field ``(batch, n_fine)`` in physical units: its conditional mean."""
        out = self.untransform(self.emulate(drivers, group, observed))
        if not self.log_growth:
            return out
        return out * torch.exp(self.log_smearing[row_groups(group, drivers)])

    def sample(
        self,
        drivers: Tensor,
        latent_noise: Tensor,
        fine_noise: Tensor,
        group: Tensor | None = None,
        observed: Tensor | None = None,
    ) -> Tensor:
        """One realisation per row, in physical units, from standard normal noise.

        The latent map is drawn around ``h(X)`` with the spread of ``e(y) - h(X)``
        (what the drivers, and ``observed``, leave unexplained at the coarse scale),
        decoded, and the fine residual spread of ``y - d(e(y))`` is added, both of
        each row's group. ``latent_noise``: ``(batch, C * n_coarse)``;
        ``fine_noise``: ``(batch, n_fine)``.
        """
        group = row_groups(group, drivers)
        mean = self.predict_latent(drivers, observed)
        eps = latent_noise.reshape(mean.shape)
        fine = self.decode(mean + self.latent_spread[group] * eps, group)
        return self.untransform(fine + self.fine_spread[group] * fine_noise)

    # -- training --------------------------------------------------------------------

    def optimizer_groups(self) -> dict[str, list[nn.Parameter]]:
        """``L1`` trains encoder, latent head and decoder; ``L2`` the growth laws and ``W``.

        Without trainable predictor parameters (identity laws, one channel) ``L2`` is
        only logged.
        """
        predictor = [*self.proxies.parameters()]
        if self.proxy_map is not None:
            predictor += list(self.proxy_map.parameters())
        ids = {id(p) for p in predictor}
        groups = {"autoencoder": [p for p in self.parameters() if id(p) not in ids]}
        if any(p.requires_grad for p in predictor):
            groups["latent"] = predictor
        return groups

    def training_losses(self, batch: tuple[Tensor, ...]) -> dict[str, Tensor]:
        """``L1``, ``L2`` and their parts for a batch ``(y, weight, drivers[, groups, counts])``."""
        y, weight, drivers = batch[:3]
        y = self.transform(y)
        z, mean, kl = self.encode(y, weight)
        z_proxy = self.predict_latent(drivers)
        anomalies = self.anomaly(torch.cat([z, z_proxy]))
        rows, group, count = group_entries(batch)
        residual = y[rows] - self.structure[group]
        weight, entries = weight[rows] * count, count.sum()
        reconstruction, reconstruction_proxy = (
            (weight * (residual - a[rows]) ** 2).sum() / entries for a in anomalies.chunk(2)
        )
        kl = kl.mean()
        l1 = reconstruction + self.alpha * reconstruction_proxy + self.beta * kl
        l2 = ((mean.detach() - z_proxy) ** 2).sum(dim=(1, 2)).mean()
        return {
            "autoencoder": l1,
            "latent": l2,
            "reconstruction": reconstruction,
            "reconstruction_proxy": reconstruction_proxy,
            "kl": kl,
        }
