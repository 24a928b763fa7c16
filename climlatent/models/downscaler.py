r"""Physics-proxy downscaling: coarse drivers -> proxy latent field -> fine field.

Seed 000, Section 4.4: coarse physical drivers (e.g. temperature, radiation) pass
through learnable proxy functions :math:`g_k` into a latent field at the coarse
resolution; a decoder maps it to the fine grid. Here the decoder is an interpolation
operator :math:`U` (fixed, sparse: bilinear weights from the coarse to the fine grid)
followed by a learned per-cell fine-scale structure, in one of two forms:

- ``"multiplicative"`` (growth laws, positive targets such as chlorophyll):
  :math:`\log \hat y = s(x) + U \sum_k \log g_k(d_k)`, so that
  :math:`\hat y = e^{s(x)} \prod_k g_k` interpolated: growth laws multiply. The loss
  is the squared error of :math:`\log y` (the likelihood of lognormal noise).
- ``"additive"`` (a variable downscaled by itself, e.g. temperature):
  :math:`\hat y = m + q\,[w(x)\, U (\sum_k g_k(d_k) - c) / p + s(x)]`: the coarse
  latent's anomaly from its training mean :math:`c` is interpolated, scaled by a
  per-cell gain and added to the fine-scale mean state :math:`s(x)`; the loss is the
  squared error of :math:`(y - m) / q`. The target's centre :math:`m` and scale
  :math:`q` (buffers ``target_centre`` and ``target_scale``, fixed before training;
  0 and 1 by default) put the learned terms in units of the target's spread: Adam's
  steps of about ``lr`` then mean the same for chlorophyll in kg m-3 (spread 1e-7)
  as in mg m-3, and the fitted field is the same in either, to float32 rounding. The
  latent's scale :math:`p` (buffer ``latent_scale``) is :math:`q` for the target's
  own coarse field (a gain of 1 carries its anomaly over) and the latent's anomaly
  spread for other drivers, in units of their own (temperature for chlorophyll).

With ``noise=True`` the module also learns a per-cell residual standard deviation
:math:`\sigma(x)` (in log space for the multiplicative form, in units of :math:`q`
for the additive form: `residual_spread` gives it in the output's) by Gaussian
negative log-likelihood, from the spread of the initial misfit (`start_at`); a
stochastic fine field is the output with that noise added
(``climlatent.ProxyDownscaler.downscale(..., n_samples=k)``).

Seasonal fits (``n_groups > 1``, see :mod:`climlatent.grouping`): the physics (the
proxy functions, the interpolation weights, the latent centre) is shared, while the
fine-scale terms :math:`s(x)`, :math:`w(x)` and :math:`\sigma(x)` are one per group,
``(n_groups, n_fine)``; each sample is downscaled with those of its group.

Batches are ``(y, weight, drivers)``: fine target cells (NaN set to a valid
placeholder), their data mask, and drivers ``(batch, n_proxies, n_coarse_cells)``;
for a seasonal fit also ``(groups, counts)``, both ``(batch, k)``: the groups each
sample enters and how often (a day-of-year window puts a sample in several; one
group with count 1 without a window; count 0 pads). The loss then sums a sample's
misfit over its groups, as if it were repeated once per group.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import ClassVar

import numpy as np
import torch
from torch import Tensor, nn

from climlatent.grouping import group_mean
from climlatent.models.interpolation import CoarseToFine
from climlatent.models.proxies import log_terms

MODES = ("multiplicative", "additive")


class ProxyDownscaler(CoarseToFine):
    """Coarse drivers through proxy functions, interpolated and refined on the fine grid.

    Parameters
    ----------
    neighbours : torch.Tensor
        ``(n_fine_cells, k)`` indices of the coarse cells each fine cell draws on.
    weights : torch.Tensor
        ``(n_fine_cells, k)`` initial interpolation weights (e.g. bilinear).
    n_coarse : int
        Number of coarse cells (length of a driver field).
    proxies : sequence of nn.Module
        One elementwise proxy function per driver.
    mode : {"multiplicative", "additive"}
        How the latent field combines with the fine-scale structure.
    structure : torch.Tensor
        Initial fine-scale structure ``s(x)`` (log-scale in the multiplicative form, in
        units of ``target_scale`` from ``target_centre`` in the additive form).
    floor : float
        Smallest target value taken into the log (multiplicative form).
    noise : bool
        Learn a per-cell residual standard deviation for stochastic downscaling.
    learn_interpolation : bool
        Train the interpolation weights (then the additive gain stays at 1).
    n_groups : int
        Groups of a seasonal fit: ``structure`` is repeated for each, as are the gain
        and the noise spread.

    Examples
    --------
    >>> from climlatent.models.proxies import ExponentialGrowth
    >>> nearest = torch.arange(3)[:, None]
    >>> model = ProxyDownscaler(nearest, torch.ones(3, 1), 3, [ExponentialGrowth()],
    ...                         "multiplicative", torch.zeros(3))
    >>> model(torch.full((2, 1, 3), 20.0)).shape
    torch.Size([2, 3])
    """

    #: Buffers that models saved before them lack, with the values that keep those
    #: models' numbers (`saved_state`).
    added_buffers: ClassVar[dict[str, float | str]] = {
        "target_centre": 0.0,
        "target_scale": 1.0,
        "term_floor": 1e-12,
        "latent_scale": "target_scale",  # the scale the latent was divided by before
    }

    def __init__(
        self,
        neighbours: Tensor,
        weights: Tensor,
        n_coarse: int,
        proxies: Sequence[nn.Module],
        mode: str,
        structure: Tensor,
        floor: float = 1e-12,
        noise: bool = False,
        learn_interpolation: bool = False,
        n_groups: int = 1,
    ) -> None:
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
        super().__init__(neighbours, weights, n_coarse, learn_interpolation)
        self.mode, self.floor, self.noise = mode, float(floor), bool(noise)
        self.proxies = nn.ModuleList(proxies)
        self.structure = nn.Parameter(structure.float().expand(n_groups, -1).clone())
        self.gain = nn.Parameter(
            torch.ones_like(self.structure),
            requires_grad=mode == "additive" and not learn_interpolation,
        )
        self.register_buffer("latent_centre", torch.zeros(n_coarse))
        self.register_buffer("target_centre", torch.tensor(0.0))
        self.register_buffer("target_scale", torch.tensor(1.0))
        self.register_buffer("latent_scale", torch.tensor(1.0))
        self.register_buffer("term_floor", torch.full((len(proxies),), 1e-12))  # `term_floors`
        self.log_sigma = nn.Parameter(torch.zeros_like(self.structure), requires_grad=noise)

    def start_at(self, misfit: np.ndarray, memberships: np.ndarray) -> None:
        """Start ``s(x)`` at each group's mean ``misfit`` and, with noise, sigma at its sd.

        ``misfit``: ``(n_samples, n_fine)``, `scaled_target` less the `predictor` of
        the initial proxies; ``memberships``: ``(n_samples, n_groups)``, how often each
        sample enters each group. Sigma started at 1 (the target's anomaly sd, or a
        factor e): 20 epochs left it 2.2 times the residual sd of chlorophyll, 24 times
        that of temperature, and draws that many times too spread.
        """
        misfit = misfit.astype(np.float64)
        offset = group_mean(misfit, memberships)
        self.structure.copy_(torch.from_numpy(np.nan_to_num(offset)))
        if self.noise:  # at least 1e-3 (of q, or in log): a constant cell's NLL stays finite
            variance = np.maximum(group_mean(misfit**2, memberships) - offset**2, 1e-6)
            self.log_sigma.copy_(torch.from_numpy(np.nan_to_num(np.log(variance) / 2)))

    def latent(self, drivers: Tensor) -> Tensor:
        """The coarse latent field ``(batch, n_coarse)``: summed (log-)proxy terms."""
        terms = [proxy(drivers[:, k]) for k, proxy in enumerate(self.proxies)]
        if self.mode == "multiplicative":
            terms = log_terms(terms, self.term_floor)
        return torch.stack(terms).sum(0)

    def centre_latent(self, drivers: Tensor, own: bool) -> None:
        """Set the additive form's latent centre and scale from the training ``drivers``.

        The centre: the latent's mean per coarse cell. The scale: the target's
        (``own``: the latent is the target's own coarse field, carried over by a gain
        of 1), else the latent's pooled anomaly sd: a driver other than the target in
        units of its own spread (sea surface temperature in degC for chlorophyll in
        kg m-3, spread 1e-7, came out 1.5e5 target sd off when divided by the target's).
        """
        latent = self.latent(drivers)
        self.latent_centre.copy_(latent.mean(dim=0))
        spread = float((latent - self.latent_centre).double().pow(2).mean().sqrt()) or 1.0
        self.latent_scale.fill_(self.target_scale if own else spread)

    def interpolated(self, drivers: Tensor) -> Tensor:
        """The coarse latent interpolated: ``(batch, n_fine)``.

        In the additive form, its anomaly in units of the latent's scale.
        """
        latent = self.latent(drivers)
        if self.mode == "additive":
            latent = (latent - self.latent_centre) / self.latent_scale
        return self.interpolate(latent)

    def scaled_target(self, y: Tensor) -> Tensor:
        """What the predictor fits: ``(y - m) / q`` (additive), ``log y`` (multiplicative)."""
        if self.mode == "multiplicative":
            return torch.log(torch.clamp(y, min=self.floor))
        return (y - self.target_centre) / self.target_scale

    def residual_spread(self) -> Tensor:
        """The residual sd per group and cell ``(n_groups, n_fine)``, in the output's units.

        The log-space spread of the multiplicative form; the target's units otherwise.
        """
        sigma = self.log_sigma.exp()
        return sigma if self.mode == "multiplicative" else sigma * self.target_scale

    def predictor(self, drivers: Tensor, group: Tensor | None = None) -> Tensor:
        """The linear predictor on the fine grid: `scaled_target`'s estimate.

        ``group``: each sample's group ``(batch,)`` (integer); group 0 when omitted.
        """
        return self._combine(self.interpolated(drivers), row_groups(group, drivers))

    def _combine(self, interpolated: Tensor, group: Tensor) -> Tensor:
        """The fine-scale terms of each row's group applied to its interpolated latent.

        Without groups the terms broadcast over the rows instead of being gathered for
        each (on one CPU thread a forward of 183 rows of 5720 cells: 25 -> 21 us a row).
        """
        structure = _of_groups(self.structure, group)
        if self.mode == "multiplicative":
            return interpolated + structure
        return _of_groups(self.gain, group) * interpolated + structure

    def forward(self, drivers: Tensor, group: Tensor | None = None) -> Tensor:
        """The downscaled field ``(batch, n_fine)`` (its median if multiplicative)."""
        predictor = self.predictor(drivers, group)
        if self.mode == "multiplicative":
            return predictor.exp_()  # a new tensor
        return predictor * self.target_scale + self.target_centre

    def training_losses(self, batch: tuple[Tensor, ...]) -> dict[str, Tensor]:
        """Squared error (or Gaussian NLL with ``noise``) of `scaled_target` on valid cells."""
        y, weight, drivers = batch[:3]
        interpolated = self.interpolated(drivers)
        rows, group, count = group_entries(batch)
        y, interpolated, weight = y[rows], interpolated[rows], weight[rows] * count
        residual = (self.scaled_target(y) - self._combine(interpolated, group)) ** 2
        n_valid = weight.sum().clamp(min=1)
        mse = (weight * residual).sum() / n_valid
        if not self.noise:
            return {"loss": mse, "mse": mse}
        log_sigma = self.log_sigma[group]
        nll = weight * (log_sigma + 0.5 * residual * torch.exp(-2 * log_sigma))
        return {"loss": nll.sum() / n_valid, "mse": mse}


def _of_groups(terms: Tensor, group: Tensor) -> Tensor:
    """Per-cell terms ``(n_groups, n_fine)`` for rows of ``group``: ``(1 or rows, n_fine)``."""
    return terms[:1] if len(terms) == 1 else terms[group]


def row_groups(group: Tensor | None, rows: Tensor) -> Tensor:
    """Each row's group as int64 indices (0 for every row of ``rows`` when ``group`` is None).

    Examples
    --------
    >>> row_groups(None, torch.zeros(3, 2)).tolist(), row_groups(torch.tensor([2.0]), None)
    ([0, 0, 0], tensor([2]))
    """
    if group is None:
        return torch.zeros(len(rows), dtype=torch.long, device=rows.device)
    return group.reshape(-1).long()


def group_entries(batch: tuple[Tensor, ...]) -> tuple[Tensor | slice, Tensor, Tensor]:
    """Each (sample, group) entry of a training batch ``(y, weight, drivers[, groups, counts])``.

    Returns the entries' rows of the batch, their groups and counts ``(entries, 1)``:
    a seasonal batch has one entry per group a sample enters (a sample's misfit is
    then summed over its groups, weighted by how often it enters each); otherwise
    every row (``slice(None)``, a view) in group 0, once.

    Examples
    --------
    >>> y = torch.zeros(2, 4)
    >>> groups, counts = torch.tensor([[0, 1], [1, 0]]), torch.tensor([[1.0, 2.0], [1.0, 0.0]])
    >>> rows, group, count = group_entries((y, y, y, groups, counts))
    >>> rows.tolist(), group.tolist(), count.ravel().tolist()
    ([0, 0, 1], [0, 1, 1], [1.0, 2.0, 1.0])
    >>> group_entries((y, y, y))[0]
    slice(None, None, None)
    """
    if len(batch) > 3:
        groups, counts = batch[3:]
        rows, slots = torch.nonzero(counts > 0, as_tuple=True)
        return rows, groups[rows, slots].long(), counts[rows, slots, None]
    y = batch[0]
    group = torch.zeros(len(y), dtype=torch.long, device=y.device)
    return slice(None), group, y.new_ones(len(y), 1)


def saved_state(state: Mapping[str, np.ndarray], module: nn.Module) -> dict[str, np.ndarray]:
    """A downscaler's saved module tensors (``module.<name>``), as ``module`` holds them now.

    Models saved before seasonal fits hold their fine-scale terms ``(n_fine,)``, without
    the group axis ``(1, n_fine)``. Models saved before a buffer of the module's
    ``added_buffers`` lack it: it takes the value that leaves their numbers as they
    were (``target_centre`` 0 and ``target_scale`` 1: the additive form learned in
    the target's own units; ``term_floor`` 1e-12, the proxy terms' floor before it was
    relative to them; a buffer named instead of a value, ``latent_scale``, takes that
    buffer's: the latent was divided by the target's scale).

    Examples
    --------
    >>> model = ProxyDownscaler(torch.zeros(2, 1), torch.ones(2, 1), 1, [], "additive",
    ...                         torch.zeros(2))
    >>> old = {"module.structure": np.zeros(2, np.float32)}
    >>> state = saved_state(old, model)
    >>> state["module.structure"].shape, float(state["module.target_scale"])
    ((1, 2), 1.0)
    """
    out = {key: state[key] for key in state if key.startswith("module.")}
    for name, tensor in module.state_dict().items():
        key = f"module.{name}"
        if tensor.dim() == 2 and np.ndim(out.get(key)) == 1:
            out[key] = np.asarray(out[key])[None]
    buffers = dict(module.named_buffers())
    for name, value in getattr(module, "added_buffers", {}).items():
        value = out[f"module.{value}"] if isinstance(value, str) else value
        out.setdefault(f"module.{name}", np.full(buffers[name].shape, value, np.float32))
    return out
