"""Tables of study results as Markdown (without the optional ``tabulate`` package)."""

from __future__ import annotations

import numbers

import pandas as pd


def markdown_table(table: pd.DataFrame, digits: int = 4) -> str:
    r"""A pipe table of ``table``: its index levels (if named) then its columns.

    Floats are written with ``digits`` significant digits; everything else as ``str``,
    with ``|`` escaped so that a cell such as ``|r| <= 0.3`` stays one cell.

    Examples
    --------
    >>> print(markdown_table(pd.DataFrame({"x": [1.23456, 2.0], "y": ["a", "|r|"]})))
    | x | y |
    |---|---|
    | 1.235 | a |
    | 2 | \|r\| |
    """
    if any(name is not None for name in table.index.names):
        table = table.reset_index()

    def cell(value: object) -> str:
        if isinstance(value, numbers.Real) and not isinstance(value, numbers.Integral):
            return f"{value:.{digits}g}"
        return str(value).replace("|", "\\|")

    lines = [
        "| " + " | ".join(map(str, table.columns)) + " |",
        "|" + "---|" * len(table.columns),
    ]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in table.to_numpy()]
    return "\n".join(lines)
