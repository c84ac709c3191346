"""Which loaded versions to unload when the server holds more than its bound.

The bound is ``MAAS_MAX_LOADED_BYTES`` and/or ``MAAS_MAX_LOADED_VERSIONS``. Versions a
route sends traffic to (the default, aliases, a traffic policy's targets) and versions
being loaded are pinned and never evicted; the others go least recently used first,
until what is left fits. Pinned versions alone may exceed the bound: they stay (the
server warns), since unloading them would fail their traffic. Pure, so tested on values.
"""

from __future__ import annotations

from collections.abc import Collection, Hashable, Iterable
from dataclasses import dataclass
from typing import Protocol, TypeVar

__all__ = ["ResidencyLimits", "Resident", "over_limits", "victims"]


K = TypeVar("K", bound=Hashable)
K_co = TypeVar("K_co", bound=Hashable, covariant=True)


class Resident(Protocol[K_co]):
    @property
    def key(self) -> K_co: ...

    resident_bytes: int
    last_used_s: float


@dataclass(frozen=True, slots=True)
class ResidencyLimits:
    """None: no bound of that kind."""

    max_bytes: int | None = None
    max_versions: int | None = None

    @property
    def bounded(self) -> bool:
        return self.max_bytes is not None or self.max_versions is not None


def over_limits(total_bytes: int, count: int, limits: ResidencyLimits) -> bool:
    return (limits.max_bytes is not None and total_bytes > limits.max_bytes) or (
        limits.max_versions is not None and count > limits.max_versions
    )


def victims(
    loaded: Iterable[Resident[K]], pinned: Collection[K], limits: ResidencyLimits
) -> list[K]:
    """The keys to unload, least recently used first, so that the rest fits ``limits``.

    >>> from types import SimpleNamespace as V
    >>> old = V(key="a", resident_bytes=5, last_used_s=1)
    >>> new = V(key="b", resident_bytes=5, last_used_s=2)
    >>> victims([old, new], pinned=(), limits=ResidencyLimits(max_versions=1))
    ['a']
    """
    residents = list(loaded)
    total = sum(r.resident_bytes for r in residents)
    count = len(residents)
    chosen: list[K] = []
    for resident in sorted(residents, key=lambda r: r.last_used_s):
        if not over_limits(total, count, limits):
            break
        if resident.key in pinned:
            continue
        chosen.append(resident.key)
        total -= resident.resident_bytes
        count -= 1
    return chosen
