"""The regions log of a zarr store: how far :func:`~climlatent.zarr_store.write_zarr` got.

One JSON line is appended (and synced to the disk) per region state, so that marking
a region costs the same for the first region of a store as for its ten-thousandth::

    {"region": 0, "status": "complete", "checksum": "sha256:...",
     "input_checksum": "sha256:...", "completed_at": "2026-01-01T00:00:00Z"}

The last line about a region says its state; a line cut short by a crash is ignored
(that region counts as pending).
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import json
import os
from pathlib import Path

REGIONS_LOG = ".climlatent_regions.jsonl"
#: The state of a region with no line in the log.
PENDING = {"status": "pending", "checksum": None, "input_checksum": None, "completed_at": None}


def region_states(store: Path, regions: list[dict]) -> list[dict]:
    """Each of the store's ``regions`` (``{dim: [start, stop]}``) with its logged state.

    Examples
    --------
    >>> import tempfile
    >>> store = Path(tempfile.mkdtemp())
    >>> log_completed(store, 1, {"checksum": "sha256:0", "input_checksum": None})
    >>> [state["status"] for state in region_states(store, [{"t": [0, 1]}, {"t": [1, 2]}])]
    ['pending', 'complete']
    """
    states = [{"region": region, **PENDING} for region in regions]
    with contextlib.suppress(FileNotFoundError):
        for line in (store / REGIONS_LOG).read_text(encoding="utf-8").splitlines():
            record = _record(line, len(states))
            if record is not None:
                states[record.pop("region")].update({**PENDING, **record})
    return states


def _record(line: str, n_regions: int) -> dict | None:
    """A line of the regions log as a record, or None for a line cut short by a crash."""
    try:
        record = json.loads(line)
    except ValueError:
        return None
    valid = (
        isinstance(record, dict)
        and record.get("status") in ("complete", "pending")
        and type(record.get("region")) is int
        and 0 <= record["region"] < n_regions
    )
    return record if valid else None


def log_completed(store: Path, index: int, checksums: dict[str, str | None]) -> None:
    """Mark a region written and read back complete, with its checksums and the time."""
    now = _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    log_regions(store, [{"region": index, "status": "complete", **checksums, "completed_at": now}])


def log_regions(store: Path, records: list[dict]) -> None:
    """Append records of region states to the regions log, synced to the disk."""
    with open(store / REGIONS_LOG, "a+b") as file:
        end = file.seek(0, os.SEEK_END)
        if end:
            file.seek(end - 1)
            if file.read(1) != b"\n":
                file.write(b"\n")  # end a line a crash cut short: it stays unreadable
        file.write("".join(json.dumps(record) + "\n" for record in records).encode())
        file.flush()
        os.fsync(file.fileno())
