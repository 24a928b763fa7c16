"""Whether a zarr store is finished, said in its own metadata, for any reader to see.

A store that :func:`climlatent.zarr_store.write_zarr` is still filling (or that a
killed run left half written) reads as missing values in the regions not yet written,
which looks like masked data. Its global attributes therefore carry
``climlatent_incomplete`` (saying so, and how to finish it) until
the last region is written, when the attribute is removed: a finished store's
metadata is what it would be without this module. :func:`climlatent.io.open_dataset`
warns when it opens a store still marked.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

#: The global attribute of a store with regions not yet written, and what it says.
INCOMPLETE = "climlatent_incomplete"
NOTE = (
    "regions of this store are not written yet and read as missing values "
    "(climlatent.zarr_store.read_manifest lists them); running the command that wrote "
    "it again completes it"
)


def mark_store(store: Path, incomplete: bool) -> None:
    """Mark the store (zarr format 2) as having regions not yet written, or remove the mark.

    Both its root attributes and their copy in the consolidated metadata, which
    readers open, are rewritten, each file replaced whole.

    Examples
    --------
    >>> import tempfile, xarray as xr
    >>> path = Path(tempfile.mkdtemp()) / "x.zarr"
    >>> _ = xr.Dataset({"a": ("t", [1.0])}).to_zarr(path, consolidated=True, zarr_format=2)
    >>> mark_store(path, True)
    >>> INCOMPLETE in xr.open_zarr(path).attrs
    True
    >>> mark_store(path, False)
    >>> INCOMPLETE in xr.open_zarr(path).attrs
    False
    """
    consolidated = json.loads((store / ".zmetadata").read_text(encoding="utf-8"))
    attrs = consolidated["metadata"].get(".zattrs", {})
    if (attrs.get(INCOMPLETE) == NOTE) == incomplete:
        return  # already so
    if incomplete:
        attrs[INCOMPLETE] = NOTE
    else:
        del attrs[INCOMPLETE]
    consolidated["metadata"][".zattrs"] = attrs
    for name, document in ((".zattrs", attrs), (".zmetadata", consolidated)):
        partial = store / f"{name}.partial"
        partial.write_text(json.dumps(document, indent=4, sort_keys=True), encoding="utf-8")
        os.replace(partial, store / name)
