"""Skill scores of emulated and downscaled fields."""

from climlatent.metrics.skill import area_mean, correlation, mse, mse_skill_score, rmse

__all__ = ["area_mean", "correlation", "mse", "mse_skill_score", "rmse"]
