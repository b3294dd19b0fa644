"""Measured op latencies kept per target across runs and spaces, so profiling is incremental.

Keyed by (layer shape, op); a cache is only reused on the same device, torch version, threads and
batch size, and the reason it was (or was not) reused is returned for the log: never silent.
Stem, head and the per-network overhead are always measured afresh.
"""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from raynas.hardware.lut import LatencyTableError

_META_KEY = b"raynas.opcache"


class OpCache:
    """One Parquet file of op latencies for one target under ``root``."""

    def __init__(self, root: str | Path, target: str, identity: dict[str, str]) -> None:
        self.path = Path(root) / f"{target}.parquet"
        self.identity = identity  # device, torch version, threads, batch: what makes timings comparable

    def load(self) -> tuple[dict[tuple[str, str], float], str]:
        """Cached entries (empty if unusable) and a sentence saying why."""
        if not self.path.is_file():
            return {}, f"no op cache at {self.path}: profiling every op"
        try:
            table = pq.read_table(self.path)
            meta = json.loads((table.schema.metadata or {})[_META_KEY])
        except (OSError, KeyError, ValueError, pa.ArrowException) as exc:
            raise LatencyTableError(f"op cache {self.path} is unreadable ({exc}); delete it to re-profile") from None
        if meta != self.identity:
            changed = sorted(k for k in set(meta) | set(self.identity) if meta.get(k) != self.identity.get(k))
            return {}, f"op cache {self.path} is for another setting ({', '.join(changed)} differ): profiling every op"
        entries = {(layer, op): ms for layer, op, ms in zip(*(table.column(c).to_pylist() for c in ("layer", "op", "latency_ms")))}
        return entries, f"reusing {len(entries)} cached op latencies from {self.path}"

    def save(self, entries: dict[tuple[str, str], float]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        keys = sorted(entries)
        table = pa.table({"layer": [k[0] for k in keys], "op": [k[1] for k in keys], "latency_ms": [entries[k] for k in keys]})
        tmp = self.path.with_suffix(".tmp")
        pq.write_table(table.replace_schema_metadata({_META_KEY: json.dumps(self.identity).encode()}), tmp)
        tmp.replace(self.path)
