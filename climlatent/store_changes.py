"""What differs between a store's recorded manifest and the run that meets it, in words.

Used by :mod:`climlatent.zarr_store` to refuse a store of another run and say why.
"""

from __future__ import annotations

import itertools
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


def untiled_regions(manifest: dict) -> str:
    """Why the regions of a store's manifest do not tile its data: ``""`` when they do.

    A resume writes the regions the manifest lists, and no others, then marks the store
    complete: a region left out or cut short, or a variable not in
    ``region_variables``, would stay unwritten, reading as missing values. The regions
    (``{"region": {dim: [start, stop]}, ...}``, as `read_manifest` gives them) must be
    the product, in order, of consecutive blocks from 0 to the size of each of the
    ``regions_dims``, and ``region_variables`` the data variables on one of these dims.

    Examples
    --------
    >>> layout = {"dims": {"time": 4}, "variables": {"tas": {"dims": ["time"]}}, "coords": {}}
    >>> manifest = {"layout": layout, "regions_dims": ["time"], "region_variables": ["tas"],
    ...             "regions": [{"region": {"time": [0, 2]}}, {"region": {"time": [2, 4]}}]}
    >>> untiled_regions(manifest)
    ''
    >>> untiled_regions({**manifest, "regions": manifest["regions"][:1]})
    'its regions along time are [[0, 2]], not blocks from 0 to its size 4'
    """
    try:
        dims, layout = manifest["regions_dims"], manifest["layout"]
        regions = [entry["region"] for entry in manifest["regions"]]
        variables = sorted(
            name
            for name, variable in layout["variables"].items()
            if name not in layout["coords"] and set(variable["dims"]) & set(dims)
        )
        if sorted(manifest["region_variables"]) != variables:
            return f"its region variables {manifest['region_variables']} are not {variables}"
        if not variables:
            return "" if regions == [] else f"it has {len(regions)} regions of no variable"
        blocks = {dim: list(dict.fromkeys(map(tuple, (r[dim] for r in regions)))) for dim in dims}
        for dim, along in blocks.items():
            edges = [0, *itertools.chain.from_iterable(along), layout["dims"][dim]]
            pairs = itertools.pairwise(edges)  # (stop, next start) must meet, start <= stop
            if any(a > b if i % 2 else a != b for i, (a, b) in enumerate(pairs)):
                return (
                    f"its regions along {dim} are {list(map(list, along))}, not blocks "
                    f"from 0 to its size {edges[-1]}"
                )
        tiles = [
            dict(zip(dims, map(list, b), strict=True)) for b in itertools.product(*blocks.values())
        ]
        if regions != tiles:
            return f"its {len(regions)} regions are not the {len(tiles)} blocks they span"
    except (KeyError, TypeError, ValueError) as err:
        return f"its regions are malformed ({type(err).__name__}: {err})"
    return ""


def _short(value: object) -> str:
    text = value if isinstance(value, str) else json.dumps(value, sort_keys=True)
    return text if len(text) <= 40 else f"{text[:16]}..."


def _changed_keys(stored: dict, given: dict) -> list[str]:
    return sorted(key for key in stored.keys() | given.keys() if stored.get(key) != given.get(key))
