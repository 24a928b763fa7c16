"""The public xarray-native estimators."""

from climlatent.estimators.base import BaseEstimator, Estimator
from climlatent.estimators.downscaler import ProxyDownscaler
from climlatent.estimators.eof_regression import EOFRegression
from climlatent.estimators.llaae import LLAAE

__all__ = ["LLAAE", "BaseEstimator", "EOFRegression", "Estimator", "ProxyDownscaler"]
