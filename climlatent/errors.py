"""Exceptions raised by climlatent.

Every error raised at a boundary (bad input data, bad file) names the variable,
dimension or file at fault, so that a user in Jupyter sees what to fix.
"""

from __future__ import annotations

import contextlib
import importlib
from collections.abc import Iterator


class ClimlatentError(Exception):
    """Base class of every exception raised by climlatent."""


class InputDataError(ClimlatentError, ValueError):
    """An input Dataset is unusable: missing coordinate, bad units, NaNs, bad grid.

    Examples
    --------
    >>> raise InputDataError("variable 'psl' has no 'units' attribute")
    Traceback (most recent call last):
    ...
    climlatent.errors.InputDataError: variable 'psl' has no 'units' attribute
    """


class CheckpointError(ClimlatentError, OSError):
    """A saved model or training checkpoint is missing, truncated or tampered with."""


class MissingDependencyError(ClimlatentError, ImportError):
    """An optional dependency is not installed; the message names the extra to install."""


def require_extra(module: str, extra: str, purpose: str) -> None:
    """Import ``module``, of climlatent's ``extra``, or raise `MissingDependencyError`.

    Parameters
    ----------
    module : str
        The optional package, as imported (``"zarr"``).
    extra : str
        The extra of climlatent that installs it (``"dask"``).
    purpose : str
        What needs it, the subject of the message.

    Examples
    --------
    >>> try:
    ...     require_extra("nonexistent", "dask", "a zarr store")
    ... except MissingDependencyError as err:
    ...     print(err)
    a zarr store needs nonexistent, which is not installed: pip install 'climlatent[dask]'
    """
    try:
        importlib.import_module(module)
    except ModuleNotFoundError as err:
        if err.name != module:  # installed, but missing one of its own dependencies
            raise
        raise MissingDependencyError(
            f"{purpose} needs {module}, which is not installed: pip install 'climlatent[{extra}]'"
        ) from err


class NotFittedError(ClimlatentError, RuntimeError):
    """An estimator method that needs a fitted model was called before ``fit``."""


class StaleFitError(NotFittedError):
    """A fitted estimator used after a parameter that shapes its fit was changed.

    Its fit is not one of its current configuration (``set_params(n_target_eofs=3)``
    on a 2-EOF fit): it is not fitted as it stands, so it is a `NotFittedError`,
    caught where that is (a refit is one remedy). The message names each changed
    parameter with its fitted and current values.

    Examples
    --------
    >>> issubclass(StaleFitError, NotFittedError)
    True
    """


def not_fitted(
    estimator: object, method: str, error: type[NotFittedError] = NotFittedError
) -> NotFittedError:
    """The error for ``method`` of ``estimator`` called before ``fit``, naming both.

    Examples
    --------
    >>> import climlatent as cl
    >>> raise not_fitted(cl.EOFRegression(), "emulate")
    Traceback (most recent call last):
    ...
    climlatent.errors.NotFittedError: EOFRegression is not fitted: call fit() before emulate()
    """
    return error(f"{type(estimator).__name__} is not fitted: call fit() before {method}()")


def is_netcdf_error(error: BaseException) -> bool:
    """Whether ``error`` is netCDF-C's (a corrupt or truncated file), not a bug's.

    netCDF4-python raises them as plain RuntimeErrors whose message starts "NetCDF:".

    Examples
    --------
    >>> is_netcdf_error(RuntimeError("NetCDF: HDF error")), is_netcdf_error(RuntimeError("x"))
    (True, False)
    """
    return isinstance(error, RuntimeError) and str(error).startswith("NetCDF:")


@contextlib.contextmanager
def file_errors_as(
    error: type[Exception], refusal: str, also: tuple[type[Exception], ...] = ()
) -> Iterator[None]:
    """Raise an OSError, netCDF-C's RuntimeError or one of ``also`` as ``error``.

    The new error reads ``"{refusal}: {original}"`` and is chained to the original; any
    other RuntimeError (a bug's) goes through as it is.

    Examples
    --------
    >>> with file_errors_as(InputDataError, "weights file 'w.nc'"):
    ...     raise RuntimeError("NetCDF: HDF error")
    Traceback (most recent call last):
    ...
    climlatent.errors.InputDataError: weights file 'w.nc': NetCDF: HDF error
    """
    try:
        yield
    except (OSError, RuntimeError, *also) as err:
        if isinstance(err, RuntimeError) and not is_netcdf_error(err):
            raise
        raise error(f"{refusal}: {err}") from err


class ClimlatentDeprecationWarning(DeprecationWarning):
    """A spelling of the API that still works but goes in the next release.

    The message names the spelling to write instead. Being a `DeprecationWarning`,
    it shows in notebooks and scripts (code run as ``__main__``) and stays silent when
    raised from inside other libraries.
    """
