"""Skill, extremes, latent-space diagnostics and disentanglement scores."""

from climlatent.metrics.disentanglement import (
    DCIScores,
    KLDisentanglement,
    dci,
    disentanglement_score,
    kl_disentanglement_score,
    knn_kl_divergence,
    mutual_information_gap,
    sap_score,
    total_correlation,
)
from climlatent.metrics.ensemble import crps_ensemble, rank_histogram, spread_skill_ratio
from climlatent.metrics.extremes import annual_maxima, fit_gev, return_level
from climlatent.metrics.latent import latent_factor_correlation, linear_probe_r2
from climlatent.metrics.quantiles import quantile_error
from climlatent.metrics.skill import (
    area_mean,
    correlation,
    mse,
    mse_skill_score,
    r2,
    r2_map,
    rmse,
    rmse_map,
)
from climlatent.metrics.trends import linear_trend, trend_error

__all__ = [
    "crps_ensemble",
    "rank_histogram",
    "spread_skill_ratio",
    "DCIScores",
    "KLDisentanglement",
    "dci",
    "disentanglement_score",
    "kl_disentanglement_score",
    "knn_kl_divergence",
    "mutual_information_gap",
    "sap_score",
    "total_correlation",
    "annual_maxima",
    "area_mean",
    "correlation",
    "fit_gev",
    "latent_factor_correlation",
    "linear_probe_r2",
    "linear_trend",
    "mse",
    "mse_skill_score",
    "quantile_error",
    "r2",
    "r2_map",
    "return_level",
    "rmse",
    "rmse_map",
    "trend_error",
]
