"""What differs between a store's recorded manifest and the run that meets it, in words.

Used by :mod:`climlatent.zarr_store` to refuse a store of another run and say why.
"""

from __future__ import annotations

import json
from collections.abc import Sequence


def leaf_changes(stored: object, given: object, path: str = "") -> list[str]:
    """``"key.sub: old -> new"`` for each leaf that differs between two JSON values.

    Examples
    --------
    >>> leaf_changes({"model": "a", "n": 1}, {"model": "b", "n": 1})
    ['model: a -> b']
    """
    if isinstance(stored, dict) and isinstance(given, dict):
        return [
            change
            for key in sorted(stored.keys() | given.keys())
            for change in leaf_changes(
                stored.get(key, "(none)"), given.get(key, "(none)"), f"{path}.{key}"
            )
        ]
    if stored == given:
        return []
    return [f"{path.lstrip('.') or 'fingerprint'}: {_short(stored)} -> {_short(given)}"]


def section_changes(stored: dict, given: dict, sections: Sequence[str]) -> str:
    """``"dims member; coords lat"``: the keys of each section that differ.

    Examples
    --------
    >>> section_changes({"dims": {"time": 3}}, {"dims": {"time": 4}}, ["dims", "coords"])
    'dims time'
    """
    return "; ".join(
        f"{section} {', '.join(changed)}"
        for section in sections
        if (changed := _changed_keys(stored.get(section, {}), given.get(section, {})))
    )


def _short(value: object) -> str:
    text = value if isinstance(value, str) else json.dumps(value, sort_keys=True)
    return text if len(text) <= 40 else f"{text[:16]}..."


def _changed_keys(stored: dict, given: dict) -> list[str]:
    return sorted(key for key in stored.keys() | given.keys() if stored.get(key) != given.get(key))
