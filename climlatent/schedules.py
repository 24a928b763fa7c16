"""Epoch schedules for the weight of a VAE's regularisation and the learning rate.

Jacobsen & Duraisamy (2022, Sec. 4) avoid over-regularised VAE solutions (a
regularisation loss near zero, the decoder outputting the data mean) by training in
three phases: ``beta = beta_0 ~ 1e-7`` while the decoder learns to reconstruct, a
scheduler raising ``beta`` to 1, then a lower learning rate at ``beta = 1`` to refine
the reconstruction. `BetaSchedule` is that recipe as a function of the epoch, so a
resumed run follows it exactly.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

__all__ = ["BetaSchedule"]


@dataclass(frozen=True)
class BetaSchedule:
    """``beta`` and a learning-rate factor as functions of the (0-based) epoch.

    Parameters
    ----------
    beta_0 : float
        Weight of the regularisation during the first ``warmup_epochs``.
    warmup_epochs : int
        Epochs at ``beta_0`` (the seed's ``r_0``).
    ramp_epochs : int
        Epochs over which ``beta`` rises from ``beta_0`` to ``beta_final``,
        geometrically (linear in ``log beta``); 0 jumps.
    beta_final : float
        Weight after the ramp (1 for the ELBO).
    lr_drop_epoch : int, optional
        From this epoch (>= 0) on the learning rate is multiplied by ``lr_factor`` (the
        seed's ``r_1`` and ``c``). None keeps it.
    lr_factor : float
        The multiplier, in (0, 1].

    Examples
    --------
    >>> schedule = BetaSchedule(beta_0=1e-6, warmup_epochs=2, ramp_epochs=3, lr_drop_epoch=6)
    >>> [f"{schedule.beta(e):.0e}" for e in range(7)]
    ['1e-06', '1e-06', '1e-04', '1e-02', '1e+00', '1e+00', '1e+00']
    >>> schedule.lr_scale(5), schedule.lr_scale(6)
    (1.0, 0.1)
    >>> BetaSchedule.constant(1.0).beta(0)
    1.0
    """

    beta_0: float = 1e-7
    warmup_epochs: int = 10
    ramp_epochs: int = 20
    beta_final: float = 1.0
    lr_drop_epoch: int | None = None
    lr_factor: float = 0.1

    def __post_init__(self) -> None:
        if not (0 < self.beta_0 <= self.beta_final):
            raise ValueError("BetaSchedule needs 0 < beta_0 <= beta_final")
        if self.warmup_epochs < 0 or self.ramp_epochs < 0:
            raise ValueError("BetaSchedule epochs must be >= 0")
        if not 0 < self.lr_factor <= 1:  # a factor above 1 would raise the rate
            raise ValueError("BetaSchedule lr_factor must be in (0, 1]")
        if self.lr_drop_epoch is not None and self.lr_drop_epoch < 0:
            raise ValueError("BetaSchedule lr_drop_epoch must be >= 0")

    @classmethod
    def constant(cls, beta: float) -> BetaSchedule:
        """A fixed ``beta`` from the first epoch (a plain beta-VAE)."""
        return cls(beta_0=beta, warmup_epochs=0, ramp_epochs=0, beta_final=beta)

    def beta(self, epoch: int) -> float:
        """Regularisation weight during ``epoch``."""
        if epoch < self.warmup_epochs:
            return self.beta_0
        step = epoch - self.warmup_epochs + 1
        if step >= self.ramp_epochs:
            return self.beta_final
        fraction = step / self.ramp_epochs
        return math.exp(
            (1 - fraction) * math.log(self.beta_0) + fraction * math.log(self.beta_final)
        )

    def lr_scale(self, epoch: int) -> float:
        """Learning-rate multiplier during ``epoch``."""
        if self.lr_drop_epoch is not None and epoch >= self.lr_drop_epoch:
            return self.lr_factor
        return 1.0
