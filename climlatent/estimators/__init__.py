"""The public xarray-native estimators."""

from climlatent.estimators.base import Estimator
from climlatent.estimators.eof_regression import EOFRegression
from climlatent.estimators.llaae import LLAAE

__all__ = ["LLAAE", "EOFRegression", "Estimator"]
