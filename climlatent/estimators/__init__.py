"""The public xarray-native estimators."""

from climlatent.estimators.base import Estimator
from climlatent.estimators.eof_regression import EOFRegression

__all__ = ["EOFRegression", "Estimator"]
