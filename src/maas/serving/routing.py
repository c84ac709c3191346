"""Where a request goes: each model's routes as this server applies them right now.

``ModelRoutes`` is what the hot path reads: the default version, each alias's version,
the versions in service, and the traffic policy in effect (a ``Split`` over versions
and a shadow). ``Deployments`` rebuilds it when the registry changes, and only moves a
route to a version once that version is warm (see ``deployments.py``).

A split is deterministic: without a sticky header it is smooth weighted round-robin
(nginx's) that switches versions only between batches. While the version it chose last
has a batch still filling (``filling``), the next request joins that batch; otherwise
the version owed the most requests is next. Each request is counted either way, so the
fractions hold to within one batch: 2,000 requests over 90/10, one at a time, send
exactly 1,800 and 200 (every tenth to version 2), and within ``max_batch_size`` of
that under load. Without the hold, 32 concurrent callers over 90/10 gave the canary
a batch of 1-2 rows on every turn of the loop, as many batches as the primary ran, and
cost 13-15% of the throughput (docs/performance.md). With a sticky header, the header's
value is hashed (CRC-32) onto the weights, so a value always lands on the same version
while the policy stands.
"""

from __future__ import annotations

import logging
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from maas.control.traffic import parse_traffic_policy
from maas.errors import MaasError
from maas.registry.entities import ServingSnapshot
from maas.registry.names import PRODUCTION_ALIAS

if TYPE_CHECKING:
    from maas.serving.shadow import ShadowMirror

__all__ = ["ModelRoutes", "Split", "Wanted", "effective_routes", "wanted_routes"]

log = logging.getLogger(__name__)


class Split:
    """Weighted choice of a version per request (see the module docstring)."""

    __slots__ = (
        "_cumulative",
        "_current",
        "_filling",
        "_last",
        "_total",
        "counts",
        "numbers",
        "primary",
        "sticky_header",
        "weights",
    )

    def __init__(
        self,
        numbers: tuple[int, ...],
        weights: tuple[float, ...],
        sticky_header: str | None,
        filling: Callable[[int], bool] | None = None,
    ) -> None:
        if not numbers or len(numbers) != len(weights) or min(weights) <= 0:
            raise ValueError("a split needs one positive weight per version")
        self.numbers = numbers
        self.weights = weights
        #: The version of the largest weight (the first of equals): its requests count as
        #: ``primary`` traffic, the others' as ``canary``.
        self.primary = numbers[weights.index(max(weights))]
        self.sticky_header = sticky_header
        self._total = sum(weights)
        self._current = [0.0] * len(numbers)
        #: Whether a version has a batch still filling (None: never hold a version).
        self._filling = filling
        self._last: int | None = None  # index of the version the last request went to
        running, cumulative = 0.0, []
        for weight in weights:
            running += weight
            cumulative.append(running / self._total)
        self._cumulative = tuple(cumulative)
        #: Requests sent to each version since this split took effect.
        self.counts: dict[int, int] = dict.fromkeys(numbers, 0)

    def pick(self, key: bytes | None = None) -> int:
        if key is not None and self.sticky_header is not None:
            point = zlib.crc32(key) / 2**32
            index = next(
                (i for i, edge in enumerate(self._cumulative) if point < edge),
                len(self.numbers) - 1,
            )
        else:
            current, weights, last = self._current, self.weights, self._last
            index = 0
            for i, weight in enumerate(weights):
                current[i] += weight
                if current[i] > current[index]:
                    index = i
            if last is not None and self._filling is not None and self._filling(self.numbers[last]):
                index = last  # join the batch that is filling
            current[index] -= self._total
            self._last = index
        number = self.numbers[index]
        self.counts[number] += 1
        return number


@dataclass(slots=True)
class ModelRoutes:
    """One model's routes in effect on this server."""

    default: int | None
    aliases: dict[str, int] = field(default_factory=dict)
    versions: frozenset[int] = frozenset()
    unloaded: bool = False
    split: Split | None = None
    shadow: ShadowMirror | None = None
    #: The stored policy document these routes apply (None: no policy in effect).
    policy: dict[str, object] | None = None

    def pinned(self) -> set[int]:
        """Versions some route sends traffic to: they stay loaded."""
        found = {*self.aliases.values()}
        if self.default is not None:
            found.add(self.default)
        if self.split is not None:
            found.update(self.split.numbers)
        if self.shadow is not None:
            found.add(self.shadow.number)
        return found


@dataclass(frozen=True, slots=True)
class Wanted:
    """The routes the registry asks for, resolved to version numbers."""

    default: int
    aliases: dict[str, int]
    #: (numbers, weights, sticky header) of the policy's split, if any
    split: tuple[tuple[int, ...], tuple[float, ...], str | None] | None = None
    #: (number, fraction) of the policy's shadow, if any
    shadow: tuple[int, float] | None = None
    policy: dict[str, Any] | None = None
    #: Why the stored policy cannot apply (it names what is no longer in service).
    policy_problem: str | None = None

    def numbers(self) -> set[int]:
        found = {self.default, *self.aliases.values()}
        if self.split is not None:
            found.update(self.split[0])
        if self.shadow is not None:
            found.add(self.shadow[0])
        return found


def wanted_routes(snapshot: ServingSnapshot) -> Wanted:
    """What ``snapshot`` asks for: production (else the newest) as the default, each alias,
    and the policy's targets (aliases in it follow the aliases)."""
    aliases = dict(snapshot.aliases)
    default = aliases.get(PRODUCTION_ALIAS, max(snapshot.versions))
    if snapshot.policy is None:
        return Wanted(default, aliases)

    def number(target: int | str) -> int:
        found = target if isinstance(target, int) else aliases.get(target)
        if found is None or found not in snapshot.versions:
            raise ValueError(f"it names {target!r}, which is not in service")
        return found

    try:
        spec = parse_traffic_policy(snapshot.policy)
        split = None
        if spec.split:
            split = (
                tuple(number(s.target) for s in spec.split),
                tuple(s.weight for s in spec.split),
                spec.sticky_header,
            )
        shadow = None if spec.shadow is None else (number(spec.shadow.target), spec.shadow.fraction)
    except (MaasError, ValueError) as exc:
        problem = exc.message if isinstance(exc, MaasError) else str(exc)
        log.error("the traffic policy of %r cannot apply: %s", snapshot.model_name, problem)
        return Wanted(default, aliases, policy_problem=f"the policy cannot apply: {problem}")
    return Wanted(default, aliases, split, shadow, dict(snapshot.policy))


def effective_routes(
    snapshot: ServingSnapshot,
    wanted: Wanted,
    previous: ModelRoutes | None,
    *,
    ready: Callable[[int], bool],
    why: Callable[[int], str],
    mirror: Callable[[int, float], ShadowMirror],
    filling: Callable[[int], bool],
) -> tuple[ModelRoutes, dict[str, str]]:
    """The routes to apply now, and the routes held back with the reason.

    A route moves to its wanted version once that version is ``ready``; until then it
    stays where it was, if that version is still ready (else there is nothing better).
    A policy applies once all of its targets are ready; kept objects (``Split``,
    ``ShadowMirror``) carry their counts on while the policy stays the same. ``filling``
    says whether a version has a batch still filling (a new ``Split`` holds to it).
    """
    holds: dict[str, str] = {}

    def choose(route: str, want: int, before: int | None) -> int:
        if ready(want) or before is None or before == want or not ready(before):
            return want
        holds[route] = f"version {want} is not serving yet ({why(want)}); {before} answers"
        return before

    default = choose("default", wanted.default, None if previous is None else previous.default)
    aliases = {
        alias: choose(alias, number, None if previous is None else previous.aliases.get(alias))
        for alias, number in wanted.aliases.items()
    }
    routes = ModelRoutes(default, aliases, frozenset(snapshot.versions))
    if wanted.policy_problem is not None:
        holds["policy"] = wanted.policy_problem
        return routes, holds
    if wanted.policy is None:
        return routes, holds
    targets = set(() if wanted.split is None else wanted.split[0])
    if wanted.shadow is not None:
        targets.add(wanted.shadow[0])
    waiting = sorted(n for n in targets if not ready(n))
    if waiting:
        holds["policy"] = f"version {waiting[0]} is not serving yet ({why(waiting[0])}); " + (
            "the previous policy applies" if previous and previous.policy else "no policy applies"
        )
        if (
            previous is not None
            and previous.policy is not None
            and all(ready(n) for n in previous.pinned())
        ):
            routes.split, routes.shadow, routes.policy = (
                previous.split,
                previous.shadow,
                previous.policy,
            )
        return routes, holds
    same = previous is not None and previous.policy == wanted.policy
    if wanted.split is not None:
        numbers, weights, sticky = wanted.split
        kept = None if not same or previous is None else previous.split
        if kept is not None and kept.numbers == numbers:
            routes.split = kept
        else:
            routes.split = Split(numbers, weights, sticky, filling)
    if wanted.shadow is not None:
        number, fraction = wanted.shadow
        kept_mirror = None if not same or previous is None else previous.shadow
        if kept_mirror is not None and kept_mirror.number == number:
            routes.shadow = kept_mirror
        else:
            routes.shadow = mirror(number, fraction)
    routes.policy = wanted.policy
    return routes, holds
