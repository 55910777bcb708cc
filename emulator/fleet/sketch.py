"""Percentiles of upgrade durations in bounded memory: exact while small, a fixed histogram after.

A fleet of a million devices must not keep a million floats to print p50 and p95. Up to
``exact_limit`` values are kept and the percentiles are exact (nearest rank); past that the values
move into fixed log-spaced bins (``bins_per_decade`` per factor of ten, 1 ms to 10^7 s), so a
percentile is the upper edge of its bin: at most ``10 ** (1 / bins_per_decade) - 1`` (0.5 % at the
default 460 bins per decade) above the exact value. The bins are fixed, not adaptive, so the
result does not depend on the order values arrive in (nor on the number of workers).
"""

from __future__ import annotations

import bisect
import math
from typing import Iterator

_LOW_S = 1e-3
_DECADES = 10  # 1 ms .. 10^7 s (115 days), beyond any simulated limit


class DurationSketch:
    def __init__(self, *, exact_limit: int = 100_000, bins_per_decade: int = 460) -> None:
        self.exact_limit = exact_limit
        self.bins_per_decade = bins_per_decade
        self._exact: list[float] | None = []
        self._bins: dict[int, int] = {}
        self.count = 0
        self.min = math.inf
        self.max = -math.inf

    def add(self, value: float) -> None:
        self.count += 1
        if value < self.min:
            self.min = value
        if value > self.max:
            self.max = value
        if self._exact is not None:
            self._exact.append(value)
            if len(self._exact) > self.exact_limit:
                for v in self._exact:
                    self._bin(v)
                self._exact = None
        else:
            self._bin(value)

    @property
    def exact(self) -> bool:
        return self._exact is not None

    def _index(self, value: float) -> int:
        if value <= _LOW_S:
            return 0
        return min(math.ceil(math.log10(value / _LOW_S) * self.bins_per_decade), _DECADES * self.bins_per_decade)

    def _edge(self, index: int) -> float:
        return _LOW_S * 10 ** (index / self.bins_per_decade)

    def _bin(self, value: float) -> None:
        i = self._index(value)
        self._bins[i] = self._bins.get(i, 0) + 1

    def percentile(self, pct: float) -> float | None:
        """Nearest-rank percentile (exact while small; the bin's upper edge, capped at max, after)."""
        if self.count == 0:
            return None
        return self.at_rank(max(1, math.ceil(self.count * pct / 100)))

    def at_rank(self, rank: int) -> float | None:
        """The ``rank``-th smallest value (1-based; exact while small, else its bin's upper edge)."""
        if self.count == 0 or not 1 <= rank <= self.count:
            return None
        if self._exact is not None:
            return sorted(self._exact)[rank - 1]
        seen = 0
        for index in sorted(self._bins):
            seen += self._bins[index]
            if seen >= rank:
                return min(max(self._edge(index), self.min), self.max)
        return self.max

    def cumulative(self, points: list[float]) -> list[int]:
        """How many values are <= each of ``points`` (ascending): the completion curve."""
        if self._exact is not None:
            ordered = sorted(self._exact)
            return [bisect.bisect_right(ordered, p) for p in points]
        items = sorted(self._bins.items())
        out, seen, k = [], 0, 0
        for p in points:
            while k < len(items) and self._edge(items[k][0]) <= p:
                seen += items[k][1]
                k += 1
            out.append(seen)
        return out

    def histogram(self, lo: float, hi: float, bins: int) -> tuple[list[int], int, int]:
        """Counts in ``bins`` equal bins over [lo, hi], and how many fall below and above."""
        counts = [0] * bins
        width = (hi - lo) / bins or 1.0
        below = above = 0

        def put(value: float, n: int) -> None:
            nonlocal below, above
            if value < lo:
                below += n
            elif value > hi:
                above += n
            else:
                counts[min(int((value - lo) / width), bins - 1)] += n

        for value, n in self._values():
            put(value, n)
        return counts, below, above

    def bin_counts(self, edges: list[float]) -> list[int]:
        """Counts between consecutive ``edges`` (ascending; the last bin includes its upper edge)."""
        counts = [0] * (len(edges) - 1)
        for value, n in self._values():
            i = bisect.bisect_right(edges, value) - 1
            counts[min(max(i, 0), len(counts) - 1)] += n
        return counts

    def _values(self) -> Iterator[tuple[float, int]]:
        if self._exact is not None:
            for v in self._exact:
                yield v, 1
        else:
            for index, n in self._bins.items():
                yield min(max(self._edge(index), self.min), self.max), n
