r"""Learnable physics proxies: growth laws that map a coarse driver field to a growth term.

A proxy is an `torch.nn.Module` applied elementwise to a driver tensor of any shape
(typically ``(batch, n_cells)``, one coarse field per sample) and returning a tensor of
the same shape: the growth, or latent contribution, that the driver induces. This is
the seed paper's Section 4.4 (temperature -> exponential growth, shortwave radiation
-> quadratic growth, both with learned parameters), with the growth laws of
Eppley (1972) and Edwards et al. (2016, L&O 61:1232):

===================== ============================== =========== ===================
class                 law                            input       output
===================== ============================== =========== ===================
`ExponentialGrowth`   :math:`a e^{b T}`              T in degC   growth rate, d-1
`QuadraticGrowth`     :math:`c R + d R^2`            R in W m-2  light factor, 1
`SaturatingLight`     :math:`\mu_{max} R / (k + R)`  R in W m-2  light factor, 1
`Linear`              :math:`s x + o`                any         any
`Identity`            :math:`x`                      any         any
===================== ============================== =========== ===================

Temperature laws give the temperature-limited maximum growth rate (Eppley's
:math:`\mu_{max} = 0.59 e^{0.0633 T}` d-1 is the default), light laws a dimensionless
light-limitation factor, so that their product is a growth rate in d-1 (the
multiplicative form :math:`\mu = \mu_{max}(T) f(R)`). Parameters that must be
positive are stored as logarithms; parameters of very different magnitude are
stored rescaled (`QuadraticGrowth.radiation_scale`) so that a single optimiser step
size suits them all. Inputs must already be in `Proxy.expected_units`: a torch module
never sees metadata, so the estimator converts units before calling it.

Build one by name with `make_proxy`; `Proxy.parameters_table` reports the fitted
values with names and units.
"""

from __future__ import annotations

import math
from typing import ClassVar

import torch
from torch import Tensor, nn

__all__ = [
    "log_terms",
    "term_floors",
    "PROXY_KINDS",
    "ExponentialGrowth",
    "Identity",
    "Linear",
    "Proxy",
    "QuadraticGrowth",
    "SaturatingLight",
    "make_proxy",
]


class Proxy(nn.Module):
    """Base class of the proxy functions: an elementwise map with named, unit-bearing parameters.

    Subclasses set `expected_units` (units of the input, ``None`` when any will do)
    and `parameter_units` (parameter name -> units), expose each named parameter as
    an attribute (a property when it is stored transformed) and implement
    ``forward``.

    Examples
    --------
    >>> proxy = ExponentialGrowth()
    >>> isinstance(proxy, Proxy), proxy.expected_units
    (True, 'degC')
    """

    expected_units: ClassVar[str | None] = None
    parameter_units: ClassVar[dict[str, str]] = {}

    def parameters_table(self) -> dict[str, tuple[float, str]]:
        """Current value and units of each named parameter.

        Returns
        -------
        dict of str to (float, str)
            Parameter name -> ``(value, units)``, in the physical parameterisation
            (``a``, not the stored ``log_a``).

        Examples
        --------
        >>> Linear(scale=2.0).parameters_table()
        {'scale': (2.0, '1'), 'offset': (0.0, '1')}
        """
        return {
            name: (getattr(self, name).item(), units)
            for name, units in self.parameter_units.items()
        }


def _log_parameter(**values: float) -> nn.Parameter:
    """Parameter holding the logarithm of one positive value (named in the error message)."""
    ((name, value),) = values.items()
    if not value > 0:
        raise ValueError(f"{name} must be positive, not {value!r}")
    return nn.Parameter(torch.tensor(math.log(value)))


class ExponentialGrowth(Proxy):
    r"""Temperature-limited growth rate :math:`a e^{b T}` (Eppley 1972), T in degC.

    Parameters
    ----------
    a : float
        Growth rate at 0 degC in d-1, positive (stored as ``log_a``).
    b : float
        Exponential temperature sensitivity in degC-1 (0.0633 is a Q10 of 1.88).

    Examples
    --------
    >>> law = ExponentialGrowth()
    >>> law(torch.tensor([[0.0, 20.0]]))
    tensor([[0.5900, 2.0925]], grad_fn=<ExpBackward0>)
    >>> round(law.parameters_table()["b"][0], 4), law.parameters_table()["a"][1]
    (0.0633, 'd-1')
    """

    expected_units = "degC"
    parameter_units = {"a": "d-1", "b": "degC-1"}

    def __init__(self, a: float = 0.59, b: float = 0.0633) -> None:
        super().__init__()
        self.log_a = _log_parameter(a=a)
        self.b = nn.Parameter(torch.tensor(float(b)))

    @property
    def a(self) -> Tensor:
        """Growth rate at 0 degC, d-1."""
        return self.log_a.exp()

    def forward(self, temperature: Tensor) -> Tensor:
        """Growth rate in d-1 at ``temperature`` (degC), elementwise."""
        return torch.exp(self.log_a + self.b * temperature)


class QuadraticGrowth(Proxy):
    r"""Radiation-induced growth :math:`c R + d R^2`, R in W m-2.

    The defaults rise from 0 to 1.275 over 0-300 W m-2, turning over only at
    :math:`-c / 2d = 1000` W m-2, far beyond any surface monthly mean; ``d < 0``
    bends the curve towards saturation. The parameters are stored as
    :math:`c R_s` and :math:`d R_s^2` with :math:`R_s` = `radiation_scale`, both of
    order one.

    Parameters
    ----------
    c : float
        Linear coefficient in m2 W-1.
    d : float
        Quadratic coefficient in m4 W-2.

    Examples
    --------
    >>> law = QuadraticGrowth(c=6e-3, d=-4e-6)
    >>> law(torch.tensor([[0.0, 100.0, 300.0]]))
    tensor([[0.0000, 0.5600, 1.4400]], grad_fn=<MulBackward0>)
    >>> law.parameters_table()["d"][1]
    'm4 W-2'
    """

    expected_units = "W m-2"
    parameter_units = {"c": "m2 W-1", "d": "m4 W-2"}
    radiation_scale: ClassVar[float] = 100.0  # W m-2

    def __init__(self, c: float = 5e-3, d: float = -2.5e-6) -> None:
        super().__init__()
        self.c_scaled = nn.Parameter(torch.tensor(c * self.radiation_scale))
        self.d_scaled = nn.Parameter(torch.tensor(d * self.radiation_scale**2))

    @property
    def c(self) -> Tensor:
        """Linear coefficient, m2 W-1."""
        return self.c_scaled / self.radiation_scale

    @property
    def d(self) -> Tensor:
        """Quadratic coefficient, m4 W-2."""
        return self.d_scaled / self.radiation_scale**2

    def forward(self, radiation: Tensor) -> Tensor:
        """Light factor (dimensionless) at ``radiation`` (W m-2), elementwise."""
        x = radiation / self.radiation_scale
        return x * (self.c_scaled + self.d_scaled * x)


class SaturatingLight(Proxy):
    r"""Saturating light curve :math:`\mu_{max} R / (k + R)`, R in W m-2.

    A Michaelis-Menten (Monod) curve: linear in R at low light with slope
    :math:`\mu_{max} / k`, saturating at :math:`\mu_{max}`; half-saturation at
    :math:`R = k`. Both parameters are positive (stored as logarithms).

    Parameters
    ----------
    mu_max : float
        Light-saturated value of the (dimensionless) light factor.
    k : float
        Half-saturation radiation in W m-2.

    Examples
    --------
    >>> law = SaturatingLight(mu_max=2.0, k=100.0)
    >>> law(torch.tensor([[0.0, 100.0, 300.0]]))
    tensor([[0.0000, 1.0000, 1.5000]], grad_fn=<DivBackward0>)
    """

    expected_units = "W m-2"
    parameter_units = {"mu_max": "1", "k": "W m-2"}

    def __init__(self, mu_max: float = 1.5, k: float = 150.0) -> None:
        super().__init__()
        self.log_mu_max = _log_parameter(mu_max=mu_max)
        self.log_k = _log_parameter(k=k)

    @property
    def mu_max(self) -> Tensor:
        """Light-saturated light factor."""
        return self.log_mu_max.exp()

    @property
    def k(self) -> Tensor:
        """Half-saturation radiation, W m-2."""
        return self.log_k.exp()

    def forward(self, radiation: Tensor) -> Tensor:
        """Light factor (dimensionless) at ``radiation`` (W m-2), elementwise."""
        return self.mu_max * radiation / (self.k + radiation)


class Linear(Proxy):
    """Affine map ``scale * x + offset`` of a driver in any (typically standardised) units.

    Parameters
    ----------
    scale, offset : float
        Initial slope and intercept; units are reported as ``"1"`` (a standardised,
        dimensionless input).

    Examples
    --------
    >>> Linear(scale=2.0, offset=1.0)(torch.tensor([[0.0, 1.0]]))
    tensor([[1., 3.]], grad_fn=<AddBackward0>)
    """

    parameter_units = {"scale": "1", "offset": "1"}

    def __init__(self, scale: float = 1.0, offset: float = 0.0) -> None:
        super().__init__()
        self.scale = nn.Parameter(torch.tensor(float(scale)))
        self.offset = nn.Parameter(torch.tensor(float(offset)))

    def forward(self, driver: Tensor) -> Tensor:
        """``scale * driver + offset``, elementwise."""
        return self.scale * driver + self.offset


class Identity(Proxy):
    """The driver itself: no parameters, any units.

    Examples
    --------
    >>> Identity()(torch.tensor([[1.5]])), Identity().parameters_table()
    (tensor([[1.5000]]), {})
    """

    def forward(self, driver: Tensor) -> Tensor:
        """The driver, unchanged."""
        return driver


PROXY_KINDS: dict[str, type[Proxy]] = {
    "exponential": ExponentialGrowth,
    "quadratic": QuadraticGrowth,
    "saturating": SaturatingLight,
    "linear": Linear,
    "identity": Identity,
}


def make_proxy(proxy: str | nn.Module, **options: float) -> nn.Module:
    """Build the proxy named ``proxy`` (a key of `PROXY_KINDS`), or pass a module through.

    Parameters
    ----------
    proxy : str or torch.nn.Module
        A name from `PROXY_KINDS`, or a ready module, returned unchanged (give it
        ``expected_units`` and ``parameters_table`` to have its units checked and
        its parameters reported).
    **options : float
        Initial parameter values for a named proxy, e.g. ``a=0.8``.

    Returns
    -------
    torch.nn.Module
        The proxy.

    Raises
    ------
    ValueError
        If the name is unknown or a parameter that must be positive is not.
    TypeError
        If ``proxy`` is neither a name nor a module, or options come with a module.

    Examples
    --------
    >>> value, units = make_proxy("exponential", b=0.07).parameters_table()["b"]
    >>> round(value, 6), units
    (0.07, 'degC-1')
    >>> law = QuadraticGrowth()
    >>> make_proxy(law) is law
    True
    >>> make_proxy("cubic")
    Traceback (most recent call last):
    ...
    ValueError: proxy must be one of ['exponential', 'identity', 'linear', ...], not 'cubic'
    """
    if isinstance(proxy, nn.Module):
        if options:
            raise TypeError(f"options {sorted(options)} cannot be applied to a ready module")
        return proxy
    if not isinstance(proxy, str):
        raise TypeError(f"proxy must be a name or a torch.nn.Module, not {type(proxy).__name__}")
    if proxy not in PROXY_KINDS:
        raise ValueError(f"proxy must be one of {sorted(PROXY_KINDS)}, not {proxy!r}")
    return PROXY_KINDS[proxy](**options)


def log_terms(terms: list[Tensor], floors: Tensor) -> list[Tensor]:
    """``log`` of each driver's proxy term, a term below its floor taken at the floor.

    ``floors`` ``(n_drivers,)``: a millionth of each term's mean over the training
    drivers (`term_floors`), so that a law's zero (no light) and trace values are
    floored alike in any units of the driver.

    Examples
    --------
    >>> [t.tolist() for t in log_terms([torch.tensor([1.0, 0.0])], torch.tensor([1e-6]))]
    [[0.0, -13.815510749816895]]
    """
    return [
        torch.log(torch.maximum(term, floor)) for term, floor in zip(terms, floors, strict=True)
    ]


def term_floors(proxies: list[nn.Module], drivers: Tensor) -> Tensor:
    """The floor of each proxy term: a millionth of its mean positive value on ``drivers``.

    ``drivers`` ``(n, n_drivers, n_coarse)``; a term with no positive value gets 1e-12.

    Examples
    --------
    >>> term_floors([Identity()], torch.tensor([[[2.0, 0.0, 4.0]]])) * 1e6
    tensor([3.])
    """
    floors = []
    with torch.no_grad():
        for k, proxy in enumerate(proxies):
            term = proxy(drivers[:, k]).double()
            positive = term[term > 0]
            floors.append(float(positive.mean()) * 1e-6 if positive.numel() else 1e-12)
    return torch.tensor(floors, dtype=torch.float32)
