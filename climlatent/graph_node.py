"""A fitted model as one node of a dask graph, never a copy per task.

A lazy ``est.emulate(ds)`` over thousands of (member, time) blocks makes one task per
block, and every task needs the model. Given as a plain argument, the model would be
serialised into each task (a distributed client ships the graph task by task);
:func:`model_node` makes it a single node that every block task depends on: a
``dask.delayed`` key on the local schedulers, or data scattered once to every worker
of a ``dask.distributed`` client.
"""

from __future__ import annotations

import uuid
from typing import Any

import dask

__all__ = ["active_client", "model_node"]


def active_client() -> Any:
    """The distributed client that dask computes on now, or None.

    Examples
    --------
    >>> with dask.config.set(scheduler="synchronous"):
    ...     active_client() is None
    True
    """
    try:
        from distributed import get_client

        client = get_client()
    except (ImportError, ValueError):  # distributed not installed, or no client
        return None
    return client if dask.base.get_scheduler() == client.get else None


def model_node(model: object, label: str = "model") -> Any:
    """``model`` as one graph node, to pass to ``dask.array.map_blocks`` as a keyword.

    Parameters
    ----------
    model : object
        A fitted estimator (or anything every block task needs whole).
    label : str
        Names the node's key.

    Returns
    -------
    dask.delayed.Delayed or distributed.Future
        A delayed key named ``climlatent-<label>-<uuid>``; under a distributed client,
        the future of the model scattered to every worker (``broadcast=True``).

    Examples
    --------
    >>> node = model_node({"weights": [1.0, 2.0]})
    >>> str(node.key).startswith("climlatent-model-"), node.compute()
    (True, {'weights': [1.0, 2.0]})
    """
    client = active_client()
    if client is None:
        return dask.delayed(model, name=f"climlatent-{label}-{uuid.uuid4().hex}", traverse=False)
    return client.scatter(model, broadcast=True, hash=False)
