"""raynas: hardware-aware neural architecture search on Ray."""

from __future__ import annotations

__version__ = "0.1.0"
