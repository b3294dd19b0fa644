"""Measured op latencies kept per target across runs and spaces, so profiling is incremental.

Keyed by (layer shape, op); a cache is only reused on the same device, torch version, threads and
batch size, and the reason it was (or was not) reused is returned for the log: never silent.
Stem, head and the per-network overhead are always measured afresh.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from raynas.hardware.lut import LatencyTableError

_META_KEY = b"raynas.opcache"


@dataclass
class CachedOps:
    """A cache's contents: op latencies and the setting they were measured on."""

    identity: dict[str, str]  # device, torch version, threads, batch, timing: what makes timings comparable
    entries: dict[tuple[str, str], float]

    def usable_for(self, identity: dict[str, str], where: str) -> tuple[dict[tuple[str, str], float], str]:
        """The entries if they were measured on ``identity``'s setting (else none), and a sentence saying why."""
        if self.identity != identity:
            changed = sorted(k for k in set(self.identity) | set(identity) if self.identity.get(k) != identity.get(k))
            return {}, f"op cache {where} is for another setting ({', '.join(changed)} differ): profiling every op"
        return dict(self.entries), f"reusing {len(self.entries)} cached op latencies from {where}"


class OpCache:
    """One Parquet file of op latencies for one target under ``root``, read and written by the driver
    (the profiling task on the target's node gets its contents and decides whether they apply there)."""

    def __init__(self, root: str | Path, target: str) -> None:
        self.path = Path(root) / f"{target}.parquet"

    def read(self) -> CachedOps | None:
        """The cached ops, or None when there is no cache yet."""
        if not self.path.is_file():
            return None
        try:
            table = pq.read_table(self.path)
            meta = json.loads((table.schema.metadata or {})[_META_KEY])
        except (OSError, KeyError, ValueError, pa.ArrowException) as exc:
            raise LatencyTableError(f"op cache {self.path} is unreadable ({exc}); delete it to re-profile") from None
        return CachedOps(
            meta, {(layer, op): ms for layer, op, ms in zip(*(table.column(c).to_pylist() for c in ("layer", "op", "latency_ms")))}
        )

    def load(self, identity: dict[str, str]) -> tuple[dict[tuple[str, str], float], str]:
        """Cached entries usable on ``identity``'s setting (empty if none) and a sentence saying why."""
        cached = self.read()
        if cached is None:
            return {}, f"no op cache at {self.path}: profiling every op"
        return cached.usable_for(identity, str(self.path))

    def save(self, cached: CachedOps) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        keys = sorted(cached.entries)
        table = pa.table({"layer": [k[0] for k in keys], "op": [k[1] for k in keys], "latency_ms": [cached.entries[k] for k in keys]})
        tmp = self.path.with_suffix(".tmp")
        pq.write_table(table.replace_schema_metadata({_META_KEY: json.dumps(cached.identity).encode()}), tmp)
        tmp.replace(self.path)
