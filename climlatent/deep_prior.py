"""Deep priors for Bayesian inverse problems: a trained Aux-VAE decoder as the prior.

Sparse, noisy observations ``d`` of a field (pressure at a few wells, station
temperatures) are explained through the decoder ``G`` of a fitted `~climlatent.AuxVAE`:
``d = H(G(z)) + e``, ``e ~ N(0, sigma^2 I)``, with ``H`` the observation points and
the prior ``z = (z_aux, z_rec) ~ N(0, I)`` in the model's standardised latent units.
Because the guided block ``z_aux`` is tethered to named parameters, its posterior is
the posterior of those parameters (in their units after un-standardising), while the
residual block carries the rest of the field's uncertainty.

- `map_estimate`: the posterior mode by gradient descent (Adam) in latent space.
- `posterior`: NUTS (Pyro) on the latent, several chains; returns posterior mean and
  standard-deviation maps, draws and credible intervals of the guided parameters, and
  the split R-hat and effective sample size of every latent coordinate.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import numpy as np
import torch
import xarray as xr

from climlatent.checks import check_int, check_number
from climlatent.draws import REALIZATION_DIM, realizations
from climlatent.errors import InputDataError, require_extra
from climlatent.estimators._refit import global_random_states
from climlatent.estimators.aux_vae import AuxVAE

__all__ = ["DeepPriorPosterior", "map_estimate", "observation_points", "posterior"]


def observation_points(model: AuxVAE, observations: xr.DataArray) -> tuple[int, np.ndarray]:
    """Channel of the observed variable and flat grid indices of the observations.

    ``observations`` has one dim (e.g. ``well``) and coordinates named like the model's
    two grid dims giving each observation's position; each must sit on a grid point.

    Examples
    --------
    >>> import climlatent as cl
    >>> from climlatent.reference import darcy
    >>> flow = darcy.generate(32, n_grid=17, workers=1)
    >>> aux = cl.AuxVAE(latent_dim=3, n_scales=2, epochs=1, progress=False)
    >>> aux = aux.fit(flow, "pressure", auxiliary=["theta"])
    >>> wells = flow["pressure"].isel(sample=0, y=[2, 8], x=[2, 8]).stack(well=("y", "x"))
    >>> observation_points(aux, wells.reset_index("well"))
    (0, array([ 36,  42, 138, 144]))
    """
    name = observations.name
    if name not in model.variables_:
        raise InputDataError(f"observed variable {name!r} is not one of {model.variables_}")
    if observations.ndim != 1 or not np.isfinite(observations.values).all():
        raise InputDataError(f"observations of {name!r} need one dim and finite values")
    grid = model.grid_
    positions = []
    for dim in model.spatial_dims_:
        if dim not in observations.coords:
            raise InputDataError(f"observations of {name!r} lack the coordinate {dim!r}")
        axis = grid[dim].values
        index = np.abs(axis[None, :] - observations[dim].values[:, None]).argmin(1)
        if not np.allclose(axis[index], observations[dim].values):
            raise InputDataError(f"observations of {name!r} are not on the model's {dim!r} grid")
        positions.append(index)
    flat = np.ravel_multi_index(tuple(positions), tuple(model.grid_size_))
    return model.variables_.index(name), flat


class _Forward(torch.nn.Module):
    """Latent vectors -> the observed values, in the variable's units.

    Decodes with a CPU copy of the model's decoder, in evaluation mode: the model's own
    stays where it runs (moving it off CUDA would break the model's next decode).
    """

    def __init__(self, model: AuxVAE, channel: int, flat: np.ndarray) -> None:
        super().__init__()
        self.decoder = copy.deepcopy(model.module_.decoder).cpu().eval()
        self.channel, self.flat = channel, torch.as_tensor(flat)
        self.mean, self.std = float(model.mean_[channel]), float(model.std_[channel])

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        fields = self.decoder(z.reshape(-1, z.shape[-1]))[:, self.channel].flatten(1)
        return fields[:, self.flat] * self.std + self.mean


def map_estimate(
    model: AuxVAE, observations: xr.DataArray, noise_std: float, steps: int = 500, seed: int = 0
) -> np.ndarray:
    """Posterior mode of the latent given ``observations`` (standardised latent units).

    Minimises ``|d - H(G(z))|^2 / (2 sigma^2) + |z|^2 / 2`` with Adam from ``seed``'s
    restarts (the prior mean and three random draws), keeping the best.

    Examples
    --------
    >>> import climlatent as cl
    >>> from climlatent.reference import darcy
    >>> flow = darcy.generate(32, n_grid=17, workers=1)
    >>> aux = cl.AuxVAE(latent_dim=3, n_scales=2, epochs=1, progress=False)
    >>> aux = aux.fit(flow, "pressure", auxiliary=["theta"])
    >>> wells = flow["pressure"].isel(sample=0, y=[2, 8], x=[2, 8]).stack(well=("y", "x"))
    >>> map_estimate(aux, wells.reset_index("well"), noise_std=0.01, steps=10).shape
    (3,)
    """
    _check_options(noise_std, seed, steps=(steps, 1))
    forward = _Forward(model, *observation_points(model, observations))
    data = torch.as_tensor(observations.values, dtype=torch.float32)
    generator = torch.Generator().manual_seed(seed)
    starts = torch.cat([torch.zeros(1, model.latent_dim),
                        torch.randn(3, model.latent_dim, generator=generator)])  # fmt: skip
    z = starts.clone().requires_grad_(True)
    optimizer = torch.optim.Adam([z], lr=0.05)
    for _ in range(steps):
        optimizer.zero_grad()
        loss = _negative_log_posterior(forward, z, data, noise_std)
        loss.sum().backward()
        optimizer.step()
    with torch.no_grad():
        best = int(_negative_log_posterior(forward, z, data, noise_std).argmin())
    return z[best].detach().numpy()


def _check_options(noise_std: float, seed: int, **counts: tuple[int, int]) -> None:
    """Refuse, by name, a noise sd that is not a positive number and counts below their least.

    A zero, NaN or negative sd was taken: the misfit was NaN or infinite (the "best"
    restart was the first) or had the sign squared away.
    """
    check_number("noise_std", noise_std, low=0)
    check_int("seed", seed, 0)
    for name, (count, least) in counts.items():
        check_int(name, count, least)


def _negative_log_posterior(forward, z, data, noise_std) -> torch.Tensor:
    misfit = ((forward(z) - data) ** 2).sum(-1) / (2 * noise_std**2)
    return misfit + 0.5 * (z**2).sum(-1)


@dataclass
class DeepPriorPosterior:
    """What `posterior` returns.

    Attributes
    ----------
    fields : xr.Dataset
        ``<variable>_mean`` and ``<variable>_std`` maps of every model variable.
    guided : xr.DataArray
        Draws of the guided parameters in their units, dims ``(realization, auxiliary)``
        (the draws numbered from 0, chain after chain).
    intervals : xr.DataArray
        Equal-tailed credible intervals, dims ``(auxiliary, bound)`` (lower, upper).
    r_hat, ess : xr.DataArray
        Split R-hat and effective sample size of every latent coordinate.
    """

    fields: xr.Dataset
    guided: xr.DataArray
    intervals: xr.DataArray
    r_hat: xr.DataArray
    ess: xr.DataArray


def posterior(
    model: AuxVAE,
    observations: xr.DataArray,
    noise_std: float,
    num_samples: int = 400,
    warmup: int = 300,
    chains: int = 2,
    credibility: float = 0.9,
    seed: int = 0,
) -> DeepPriorPosterior:
    """Sample the latent posterior with NUTS (Pyro) and summarise it as xarray objects.

    Parameters
    ----------
    model : AuxVAE
        A fitted Aux-VAE; its decoder is the forward model's prior.
    observations : xr.DataArray
        Observed values of one of the model's variables, one dim, with grid coordinates.
    noise_std : float
        Standard deviation of the observation errors, in the variable's units.
    num_samples, warmup, chains : int
        NUTS draws kept and discarded per chain; chains run one after another from
        different seeds (for R-hat).
    credibility : float
        Mass of the equal-tailed intervals.
    seed : int
        Seed of the first chain; python's, numpy's and torch's global random states are
        left as the call found them.

    Returns
    -------
    DeepPriorPosterior
        Field mean/std maps, guided-parameter draws and intervals, diagnostics.

    Examples
    --------
    >>> import climlatent as cl
    >>> from climlatent.reference import darcy
    >>> flow = darcy.generate(32, n_grid=17, workers=1)
    >>> aux = cl.AuxVAE(latent_dim=3, n_scales=2, epochs=1, progress=False)
    >>> aux = aux.fit(flow, "pressure", auxiliary=["theta"])
    >>> wells = flow["pressure"].isel(sample=0, y=[2, 8], x=[2, 8]).stack(well=("y", "x"))
    >>> post = posterior(aux, wells.reset_index("well"), 0.05, num_samples=10, warmup=10)
    >>> post.intervals.dims, sorted(post.fields.data_vars)
    (('auxiliary', 'bound'), ['pressure_mean', 'pressure_std'])
    """
    _check_options(noise_std, seed, num_samples=(num_samples, 1), warmup=(warmup, 0),
                   chains=(chains, 1))  # fmt: skip
    check_number("credibility", credibility, low=0, high=1)
    require_extra("pyro", "inverse", "posterior()")
    import pyro
    import pyro.distributions as dist
    from pyro.infer import MCMC, NUTS
    from pyro.ops.stats import effective_sample_size, split_gelman_rubin

    forward = _Forward(model, *observation_points(model, observations))
    data = torch.as_tensor(observations.values, dtype=torch.float32)
    dim = model.latent_dim

    def probabilistic_model() -> None:
        z = pyro.sample("z", dist.Normal(torch.zeros(dim), 1.0).to_event(1))
        pyro.sample("d", dist.Normal(forward(z)[0], noise_std).to_event(1), obs=data)

    draws = []
    # pyro seeds python's, numpy's and torch's global generators: the caller's are given
    # back, also on a Ctrl-C, and no other thread's draws interleave with the chains'
    with global_random_states():
        for chain in range(chains):
            pyro.set_rng_seed(seed + chain)
            mcmc = MCMC(NUTS(probabilistic_model), num_samples=num_samples, warmup_steps=warmup,
                        disable_progbar=True)  # fmt: skip
            mcmc.run()
            draws.append(mcmc.get_samples()["z"])
    z = torch.stack(draws)  # (chain, draw, latent)
    r_hat = split_gelman_rubin(z, chain_dim=0, sample_dim=1).numpy()
    ess = effective_sample_size(z, chain_dim=0, sample_dim=1).numpy()
    flat = z.reshape(-1, dim).numpy().astype(np.float32)
    decoded = model.decode(xr.DataArray(flat, dims=(REALIZATION_DIM, "latent")))
    fields = xr.Dataset(
        {
            f"{name}_{stat}": getattr(decoded[name], stat)(REALIZATION_DIM).assign_attrs(
                decoded[name].attrs
            )
            for name in model.variables_
            for stat in ("mean", "std")
        }  # fmt: skip
    )
    k = len(model.guided_names_)
    guided = xr.DataArray(
        flat[:, :k] * model.aux_std_ + model.aux_mean_,
        dims=(REALIZATION_DIM, "auxiliary"),
        coords={
            REALIZATION_DIM: realizations(len(flat), "draw of the posterior (NUTS)"),
            "auxiliary": model.guided_names_,
        },
        name="guided_parameters",
    )
    tail = (1 - credibility) / 2
    intervals = guided.quantile([tail, 1 - tail], dim=REALIZATION_DIM).rename(quantile="bound")
    intervals = intervals.transpose("auxiliary", "bound").assign_coords(bound=["lower", "upper"])
    latent = {"latent": np.arange(dim)}
    return DeepPriorPosterior(
        fields=fields,
        guided=guided,
        intervals=intervals,
        r_hat=xr.DataArray(r_hat, dims="latent", coords=latent, name="r_hat"),
        ess=xr.DataArray(ess, dims="latent", coords=latent, name="ess"),
    )
