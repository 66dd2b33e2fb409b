"""Per-installation rate-limit budgets, read from GitHub's response headers.

GitHub gives each installation its own primary rate limit per resource (REST
``core``, ``graphql``, ``search``, …) and reports it on every answer:
``x-ratelimit-remaining`` calls are left until ``x-ratelimit-reset`` (epoch
seconds) in the resource named by ``x-ratelimit-resource``
(https://docs.github.com/rest/using-the-rest-api/rate-limits-for-the-rest-api#checking-the-status-of-your-rate-limit,
https://docs.github.com/graphql/overview/rate-limits-and-query-limits-for-the-graphql-api#checking-the-status-of-your-primary-rate-limit).

A job whose installation has fewer than ``reserve`` calls left in a resource
waits in the queue for that resource's reset (``Store.defer``) instead of
holding a worker while GitHub refuses it or spending the last calls, which
publishing a decision needs. The App's own (JWT) and users' limits are not
tracked here.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass

#: Calls kept back per installation and resource unless configured otherwise
#: (``GATE_RATE_LIMIT_RESERVE``): a job reads and publishes in a few dozen at most.
RESERVE = 50
#: Installations tracked at once; the least recently heard of are forgotten first.
MAX_INSTALLATIONS = 4096
#: Seconds past the announced reset before a deferred job runs again: GitHub's
#: clock and ours differ, and a job that arrives early is refused again.
RESET_MARGIN = 1.0


@dataclass(frozen=True, slots=True)
class Window:
    """What GitHub last said about one resource of one installation."""

    remaining: int
    reset: float  # epoch seconds


class Budgets:
    """The latest rate-limit window per installation and resource."""

    def __init__(self, *, reserve: int = RESERVE, max_installations: int = MAX_INSTALLATIONS):
        if reserve < 0 or max_installations < 1:
            raise ValueError("reserve must not be negative, max_installations positive")
        self.reserve = reserve
        self._max = max_installations
        self._windows: OrderedDict[int, dict[str, Window]] = OrderedDict()
        #: The latest reset of any window below the reserve: nothing waits after it.
        self._spent_until = 0.0

    def note(self, installation_id: int | None, headers: Mapping[str, str]) -> None:
        """Record an answer's rate-limit headers (answers without them change nothing)."""
        if installation_id is None:
            return
        remaining, reset = headers.get("x-ratelimit-remaining"), headers.get("x-ratelimit-reset")
        if not remaining or not reset or not remaining.isdigit() or not reset.isdigit():
            return
        resource = headers.get("x-ratelimit-resource") or "core"
        seen = Window(remaining=int(remaining), reset=float(reset))
        windows = self._windows.get(installation_id)
        if windows is None:
            windows = self._windows[installation_id] = {}
            if len(self._windows) > self._max:
                self._windows.popitem(last=False)
        else:
            self._windows.move_to_end(installation_id)
        known = windows.get(resource)
        if known is not None:
            if seen.reset < known.reset:
                return  # an answer from the window before, overtaken by a newer one
            if seen.reset == known.reset and seen.remaining > known.remaining:
                return  # answers of one window arrive out of order: the lowest count holds
        windows[resource] = seen
        if seen.remaining < self.reserve:
            self._spent_until = max(self._spent_until, seen.reset)

    def spent(self, *, now: float) -> bool:
        """Whether any installation may be short now (one comparison: the worker's fast path)."""
        return self._spent_until > now

    def wait_until(self, installation_id: int, *, now: float) -> float | None:
        """When a job of this installation may run, if not now: the latest reset of a
        resource below the reserve (a job may need every resource), plus a margin."""
        until = None
        for window in self._windows.get(installation_id, {}).values():
            if window.remaining < self.reserve and window.reset > now:
                until = max(until or 0.0, window.reset + RESET_MARGIN)
        return until

    def remaining(self, installation_id: int, resource: str = "core") -> int | None:
        """The last count GitHub gave for the resource; None when never heard of."""
        window = self._windows.get(installation_id, {}).get(resource)
        return None if window is None else window.remaining
