"""The store on Redis: for several hosts sharing one queue.

Why raw Redis and not a task framework: arq pins ``redis<6`` and, given a job
id that is already queued, keeps the *oldest* job, the opposite of what a
coalescing queue needs (the newest head wins, all deliveries of a key are
handled together); taskiq would bring a stream mechanism plus a framework and
more pin conflicts. What this store needs is a handful of Lua scripts over
lists, hashes and sorted sets, each of them atomic
(https://redis.io/docs/latest/develop/interact/programmability/eval-intro/).

Data layout (``P`` is the prefix; every key starts with ``P:``)::

    P:seen:<delivery id>   string  dedupe marker: when it expires (ms, store clock)
    P:d:<delivery id>      hash    k, ev, ac (absent for no action), body, at,
                                   ra/rb (ms: ready after the debounce window /
                                   at the latest, from this delivery's accept)
    P:q:<job key>          list    delivery ids of the key, accept order
    P:quiet:<job key>      string  ms (store clock) when the debounce window
                                   after the key's last delivery ends; outlives
                                   the key's job (leading edge), PX collects it
    P:pending              zset    delivery id -> received_at: depth and lag
    P:meta:<job key>       hash    grp, attempts, due (ms, the debounce cap),
                                   retry (ms), token, worker, was (ready time
                                   when claimed) while leased
    P:g:<group>            zset    job key -> ms it is ready at; while leased,
                                   the lease's end (an expired lease is ready)
    P:held:<group>         zset    leased job key -> its lease's end (spare
                                   claims pass over a group with a live one)
    P:groups               zset    group -> turn; lowest is served first
    P:heads                zset    group -> its earliest key's score
    P:turn                 string  turn counter (INCR)
    P:dead                 list    dead letters, JSON {key, delivery_ids, error,
                                   attempts, at}; kept until an operator trims it
    P:kv:<ns>:<key>        string  key/value documents, SET PX

A dead letter keeps the key and the delivery ids (X-GitHub-Delivery GUIDs), not
the bodies: the key says what to evaluate again, and GitHub's delivery log lists
each GUID for redelivery while it keeps it (https://docs.github.com/rest/apps/webhooks).

Flow:

- ``accept`` is one script: unless ``P:seen:<id>`` holds a time still ahead, it
  writes the marker, the delivery hash, RPUSHes the id on the key's list and
  ZADDs it to ``P:pending``; a delivery with no other of its key in the window
  before it (``P:quiet:<key>`` past) is ready at once (leading edge), one within
  it at the end of its own window: a new key enters its group's zset at that
  time (a new group takes the next turn), an idle key's ready time moves to the
  end of the new window, capped at ``due``. If a write inside
  fails, the script deletes what it wrote, the marker included, so GitHub's
  redelivery is not mistaken for a duplicate. An acknowledged write is as
  durable as the server's ``appendonly``/``appendfsync`` settings make it
  (https://redis.io/docs/latest/operate/oss_and_stack/management/persistence/):
  run with ``appendonly yes`` (``appendfsync everysec`` loses at most a second
  on power loss, ``always`` nothing).
- ``claim`` is one script: ``P:heads`` names the groups with a key due
  (ZRANGEBYSCORE, https://redis.io/docs/latest/commands/zrangebyscore/), so an
  idle poll costs one lookup; of those it takes the group whose turn is lowest
  and that group's lowest-scored key, O(ready groups + log n). Taking it
  sets the score to the lease's end, records a fresh token in ``P:meta`` and
  gives the group the next turn (round robin across repositories). A key whose
  previous token is still in ``P:meta`` lost its holder: that counts as a
  failed attempt.
- ``complete``/``fail``/``release``/``extend``/``defer`` are scripts that first
  compare the token with ``P:meta:<key>`` (a worker whose lease expired must not
  touch its successor's) and then set the key's next score: the debounced time
  of deliveries that arrived meanwhile, a retry's end, its old place, or a new
  lease end.

Time is the store's clock (``time.time`` unless injected), passed into each
script as milliseconds; Redis-side expiry (PX) only collects garbage. Workers on
several hosts must keep their clocks in sync, as NTP does far more tightly than a
lease needs. Scripts compute key names from the prefix, so the store needs a
standalone (or Sentinel-managed) Redis, not Redis Cluster. A prefix holding the
earlier stream-based layout is converted by :data:`_UPGRADE` on first use.
"""

from __future__ import annotations

import contextlib
import json
import secrets
import time
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any

import redis.asyncio as aioredis
import redis.exceptions as redis_errors
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff
from redis.commands.core import AsyncScript

from webhooks.store.base import (
    DEBOUNCE_MAX_DELAY,
    DEDUPE_SECONDS,
    Batcher,
    DeadLetter,
    Delivery,
    Job,
    StoreUnavailable,
    check_namespace,
)

#: How often (seconds) an instance looks for work queued in the earlier layout.
_UPGRADE_EVERY = 60.0

#: Replies that mean "cannot write now", not "this store has a bug".
_OUTAGE_REPLIES = ("OOM", "READONLY", "MISCONF", "MASTERDOWN", "NOREPLICAS", "TRYAGAIN")

# Shared by the scripts below. KEYS[1] is always P:pending, KEYS[2] P:groups;
# ARGV[1] the prefix, ARGV[2] the store clock's now (ms).
_PRELUDE = """
local P, now = ARGV[1], tonumber(ARGV[2])
local pending, groups = KEYS[1], KEYS[2]
local function args_from(first)
  local out = {}
  for i = first, #ARGV do out[#out + 1] = ARGV[i] end
  return out
end
local function gkey(grp) return P .. ':g:' .. grp end
-- the group's leased keys -> lease end (spare claims skip a group with a live one)
local function held(grp) return P .. ':held:' .. grp end
-- after any change to a group's zset: P:heads keeps the group's earliest score
-- (claim finds the ready groups without visiting the others); an empty group
-- leaves the rotation
local function touch(grp)
  local head = redis.call('ZRANGE', gkey(grp), 0, 0, 'WITHSCORES')
  if #head == 0 then
    redis.call('ZREM', P .. ':heads', grp)
    redis.call('ZREM', groups, grp)
  else
    redis.call('ZADD', P .. ':heads', head[2], grp)
  end
end
-- a group served (or new) goes to the end of the rotation
local function next_turn() return redis.call('INCR', P .. ':turn') end
-- the ready time of a key's pending deliveries: after the last one's window,
-- capped by the first one's limit; and that limit
local function debounced(key)
  local ra, rb = nil, nil
  for _, id in ipairs(redis.call('LRANGE', P .. ':q:' .. key, 0, -1)) do
    local d = redis.call('HMGET', P .. ':d:' .. id, 'ra', 'rb')
    -- no times: queued by the earlier layout, ready now
    local a, b = tonumber(d[1] or now), tonumber(d[2] or now)
    if not ra or a > ra then ra = a end
    if not rb or b < rb then rb = b end
  end
  if not ra then return nil, nil end
  return math.min(ra, rb), rb
end
local function drop(key, ids)
  local q = P .. ':q:' .. key
  for _, id in ipairs(ids) do
    redis.call('DEL', P .. ':d:' .. id)
    redis.call('LREM', q, 1, id)
    redis.call('ZREM', pending, id)
  end
end
-- a key without deliveries leaves its group, a group without keys the rotation
local function forget(key, grp)
  redis.call('DEL', P .. ':meta:' .. key, P .. ':q:' .. key)
  redis.call('ZREM', gkey(grp), key)
  redis.call('ZREM', held(grp), key)
  touch(grp)
end
-- the lease ends with the work done: queue what arrived meanwhile, debounced
local function requeue(key, meta, grp)
  local ready, due = debounced(key)
  if not ready then forget(key, grp) return end
  redis.call('ZREM', held(grp), key)
  redis.call('HDEL', meta, 'token', 'worker', 'was')
  redis.call('HSET', meta, 'attempts', 0, 'due', due, 'retry', 0)
  redis.call('ZADD', gkey(grp), ready, key)
  touch(grp)
end
-- the lease ends; the key is ready again at ready (a retry or a deferral)
local function wait(key, meta, grp, ready, attempts)
  redis.call('ZREM', held(grp), key)
  redis.call('HDEL', meta, 'token', 'worker', 'was')
  redis.call('HSET', meta, 'attempts', attempts, 'retry', ready)
  redis.call('ZADD', gkey(grp), ready, key)
  touch(grp)
end
"""

# KEYS: pending, groups, seen marker, delivery hash, key queue, key meta, group zset,
#       key's quiet marker
# ARGV: prefix, now, dedupe ms, key, id, event, has action, action, body,
#       received_at, ready after, ready by, group, debounce on ('1'/'0')
_ACCEPT = """
local seen = redis.call('GET', KEYS[3])
-- '1': a marker of the earlier layout, whose own expiry is still running
if seen and (seen == '1' or tonumber(seen) > now) then return 0 end
if redis.call('EXISTS', KEYS[4]) == 1 then return 0 end
local key, id, grp = ARGV[4], ARGV[5], ARGV[13]
local ra, rb = tonumber(ARGV[11]), tonumber(ARGV[12])
local debounce = ARGV[14] == '1'
if debounce then
  -- leading edge: no delivery of this key within the window before this one
  local quiet = redis.call('GET', KEYS[8])
  if not quiet or tonumber(quiet) <= now then ra = now end
end
local ok, err = pcall(function()
  local dedupe = tonumber(ARGV[3])
  redis.call('SET', KEYS[3], now + dedupe, 'PX', dedupe)
  local fields = {'k', key, 'ev', ARGV[6], 'body', ARGV[9], 'at', ARGV[10], 'ra', ra, 'rb', rb}
  if ARGV[7] == '1' then
    table.insert(fields, 'ac')
    table.insert(fields, ARGV[8])
  end
  redis.call('HSET', KEYS[4], unpack(fields))
  redis.call('RPUSH', KEYS[5], id)
  redis.call('ZADD', pending, ARGV[10], id)
  if debounce then
    -- the window after this delivery; PX (a minute more) only collects it later
    local window = tonumber(ARGV[11])
    redis.call('SET', KEYS[8], window, 'PX', window - now + 60000)
  end
end)
if not ok then
  -- undo, marker first: a redelivery must not look like a duplicate
  pcall(redis.call, 'DEL', KEYS[3])
  pcall(redis.call, 'DEL', KEYS[4])
  pcall(redis.call, 'LREM', KEYS[5], 0, id)
  pcall(redis.call, 'ZREM', pending, id)
  return redis.error_reply(type(err) == 'table' and err.err or tostring(err))
end
local current = redis.call('ZSCORE', KEYS[7], key)
if not current then
  redis.call('HSET', KEYS[6], 'grp', grp, 'due', rb)
  redis.call('ZADD', KEYS[7], ra, key)
  if not redis.call('ZSCORE', groups, grp) then redis.call('ZADD', groups, next_turn(), grp) end
  touch(grp)
elseif debounce and ra > now then
  local m = redis.call('HMGET', KEYS[6], 'token', 'due', 'retry')
  if not m[1] then  -- idle: wait for the end of the new window, within the cap
    local ready = math.max(tonumber(current), math.min(ra, tonumber(m[2] or rb)),
                           tonumber(m[3] or '0'))
    redis.call('ZADD', KEYS[7], ready, key)
    touch(grp)
  end
end
return 1
"""

# KEYS: pending, groups   ARGV: prefix, now, consumer, token, lease ms, spare ('1'/'0')
# Returns a job {key, attempts, id, event, action, body, at, ...} or nil.
_CLAIM = """
local consumer, token = ARGV[3], ARGV[4]
local lease_until = now + tonumber(ARGV[5])
local spare = ARGV[6] == '1'

local function take(key, grp, score)
  local meta = P .. ':meta:' .. key
  local q = P .. ':q:' .. key
  local ids = redis.call('LRANGE', q, 0, -1)
  if #ids == 0 then forget(key, grp) return nil end
  local prev = redis.call('HMGET', meta, 'token', 'attempts')
  local attempts = tonumber(prev[2] or '0')
  redis.call('HDEL', meta, 'was')
  if prev[1] then
    attempts = attempts + 1  -- the previous lease expired under its holder
  else
    redis.call('HSET', meta, 'was', score)
  end
  redis.call('HSET', meta, 'attempts', attempts, 'token', token, 'worker', consumer, 'retry', 0)
  redis.call('ZADD', gkey(grp), lease_until, key)
  redis.call('ZADD', held(grp), lease_until, key)
  touch(grp)
  redis.call('ZADD', groups, next_turn(), grp)
  local job = {key, attempts}
  for _, id in ipairs(ids) do
    local d = redis.call('HMGET', P .. ':d:' .. id, 'ev', 'ac', 'body', 'at')
    if d[1] then
      table.insert(job, id)
      table.insert(job, d[1])
      table.insert(job, d[2])
      table.insert(job, d[3])
      table.insert(job, d[4])
    else
      redis.call('LREM', q, 0, id)
      redis.call('ZREM', pending, id)
    end
  end
  return job
end

-- the groups with a ready key (P:heads), and of those the one whose turn it is;
-- again if its key turned out to have no deliveries left (take forgot it)
for _ = 1, 64 do
  local best, best_turn = nil, nil
  for _, grp in ipairs(redis.call('ZRANGEBYSCORE', P .. ':heads', '-inf', now)) do
    local turn = tonumber(redis.call('ZSCORE', groups, grp) or '0')
    local busy = spare and redis.call('ZCOUNT', held(grp), '(' .. now, '+inf') > 0
    if not busy and (not best or turn < best_turn) then best, best_turn = grp, turn end
  end
  if not best then return nil end
  local head = redis.call('ZRANGE', gkey(best), 0, 0, 'WITHSCORES')
  if #head == 0 then
    touch(best)
  else
    local job = take(head[1], best, head[2])
    if job then return job end
  end
end
return nil
"""

# KEYS: pending, groups   ARGV: prefix, now, key, token, delivery ids...
_COMPLETE = """
local key, token = ARGV[3], ARGV[4]
local meta = P .. ':meta:' .. key
local m = redis.call('HMGET', meta, 'token', 'grp')
if m[1] ~= token then return 0 end
drop(key, args_from(5))
requeue(key, meta, m[2])
return 1
"""

# KEYS: pending, groups
# ARGV: prefix, now, key, token, retry ms, max attempts, error, delivery ids...
# Returns 0 (stale token), 1 (retry scheduled) or the dead letter's JSON.
_FAIL = """
local key, token = ARGV[3], ARGV[4]
local meta = P .. ':meta:' .. key
local m = redis.call('HMGET', meta, 'token', 'grp', 'attempts')
if m[1] ~= token then return 0 end
local attempts = tonumber(m[3] or '0') + 1
if attempts < tonumber(ARGV[6]) then
  wait(key, meta, m[2], now + tonumber(ARGV[5]), attempts)
  return 1
end
local ids = args_from(8)
drop(key, ids)
local letter = cjson.encode({key = key, delivery_ids = ids, error = ARGV[7],
                             attempts = attempts, at = now / 1000})
redis.call('RPUSH', P .. ':dead', letter)
-- deliveries that arrived meanwhile get a fresh start (a new push may fix it)
requeue(key, meta, m[2])
return letter
"""

# KEYS: pending, groups   ARGV: prefix, now, key, token
_RELEASE = """
local key, token = ARGV[3], ARGV[4]
local meta = P .. ':meta:' .. key
local m = redis.call('HMGET', meta, 'token', 'grp', 'was')
if m[1] ~= token then return 0 end
redis.call('HDEL', meta, 'token', 'worker', 'was')
redis.call('ZREM', held(m[2]), key)
redis.call('ZADD', gkey(m[2]), m[3] or now, key)  -- back to its place in line
touch(m[2])
return 1
"""

# KEYS: pending, groups   ARGV: prefix, now, key, token, until ms
_DEFER = """
local key, token = ARGV[3], ARGV[4]
local meta = P .. ':meta:' .. key
local m = redis.call('HMGET', meta, 'token', 'grp', 'attempts')
if m[1] ~= token then return 0 end
wait(key, meta, m[2], tonumber(ARGV[5]), tonumber(m[3] or '0'))
return 1
"""

# KEYS: pending, groups   ARGV: prefix, now, key, token, lease ms
_EXTEND = """
local key, token = ARGV[3], ARGV[4]
local meta = P .. ':meta:' .. key
local m = redis.call('HMGET', meta, 'token', 'grp')
if m[1] ~= token then return 0 end
redis.call('ZADD', gkey(m[2]), 'XX', now + tonumber(ARGV[5]), key)
redis.call('ZADD', held(m[2]), now + tonumber(ARGV[5]), key)
touch(m[2])
return 1
"""

# KEYS: pending, groups   ARGV: prefix, now
# The earlier layout announced keys in a stream (P:stream) and kept retries in
# P:delayed: queue every key they name in its group, then drop both.
_UPGRADE = """
if redis.call('EXISTS', P .. ':stream', P .. ':delayed') == 0 then return 0 end
local function group_of(key)
  local kind, rest = string.match(key, '^([^:]*):(.*)$')
  if not kind or kind == 'install' then return key end
  local grp = string.match(rest, '^[^#@]*')
  if grp == '' then return key end
  return grp
end
local order, due = {}, {}
local function note(key, at)
  if not due[key] then order[#order + 1] = key end
  due[key] = at
end
for _, entry in ipairs(redis.call('XRANGE', P .. ':stream', '-', '+')) do
  local raw = entry[2]
  for i = 1, #raw, 2 do
    if raw[i] == 'k' then note(raw[i + 1], now) end
  end
end
local delayed = redis.call('ZRANGE', P .. ':delayed', 0, -1, 'WITHSCORES')
for i = 1, #delayed, 2 do note(delayed[i], tonumber(delayed[i + 1])) end
local moved = 0
for _, key in ipairs(order) do
  local at = due[key]
  local meta = P .. ':meta:' .. key
  if redis.call('LLEN', P .. ':q:' .. key) > 0 and not redis.call('HGET', meta, 'grp') then
    local grp = group_of(key)
    redis.call('HDEL', meta, 'anchor')
    redis.call('HSET', meta, 'grp', grp, 'due', at, 'retry', at)
    redis.call('ZADD', gkey(grp), at, key)
    if not redis.call('ZSCORE', groups, grp) then redis.call('ZADD', groups, next_turn(), grp) end
    touch(grp)
    moved = moved + 1
  end
end
redis.call('DEL', P .. ':stream', P .. ':delayed')
return moved
"""


def _ms(seconds: float) -> int:
    return max(1, round(seconds * 1000))


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _letter(raw: bytes | str) -> DeadLetter:
    data = json.loads(raw)
    ids = data.get("delivery_ids") or []  # cjson encodes an empty table as {}
    return DeadLetter(
        key=data["key"],
        delivery_ids=tuple(ids),
        error=data["error"],
        attempts=int(data["attempts"]),
        at=float(data["at"]),
    )


# Take the lock when free, run out, or already ours (renewing it). The holder's
# deadline is the store's clock, like leases; PX only collects the key later.
# KEYS: lock  ARGV: owner, now ms, ttl ms
_LOCK = """
local holder = redis.call('HMGET', KEYS[1], 'owner', 'until')
local now, ttl = tonumber(ARGV[2]), tonumber(ARGV[3])
if holder[1] and holder[1] ~= ARGV[1] and tonumber(holder[2]) > now then return 0 end
redis.call('HSET', KEYS[1], 'owner', ARGV[1], 'until', now + ttl)
redis.call('PEXPIRE', KEYS[1], ttl + 60000)
return 1
"""
# Drop the lock only if it is still ours.  KEYS: lock  ARGV: owner
_UNLOCK = """
if redis.call('HGET', KEYS[1], 'owner') == ARGV[1] then redis.call('DEL', KEYS[1]) end
return 1
"""


class RedisStore:
    """:class:`webhooks.store.base.Store` on Redis; create with :meth:`open`."""

    def __init__(
        self,
        client: aioredis.Redis,
        *,
        prefix: str,
        clock: Callable[[], float] = time.time,
        debounce_seconds: float = 0.0,
        max_delay: float = DEBOUNCE_MAX_DELAY,
    ) -> None:
        if debounce_seconds < 0 or max_delay < 0:
            raise ValueError("debounce_seconds and max_delay must not be negative")
        self._client = client
        self._prefix = prefix
        self._clock = clock
        self._debounce_ms = round(debounce_seconds * 1000)
        self._max_delay_ms = max(round(max_delay * 1000), self._debounce_ms)
        self._pending = f"{prefix}:pending"
        self._groups = f"{prefix}:groups"
        self._dead = f"{prefix}:dead"
        self._upgraded_at: float | None = None  # time.monotonic() of the last check
        self._closed = False
        self._accept = self._script(_ACCEPT)
        self._claim = self._script(_CLAIM)
        self._complete = self._script(_COMPLETE)
        self._fail = self._script(_FAIL)
        self._release = self._script(_RELEASE)
        self._defer = self._script(_DEFER)
        self._extend = self._script(_EXTEND)
        self._upgrade = self._script(_UPGRADE)
        self._accepts: Batcher[Delivery, bool] = Batcher(self._accept_many)

    @classmethod
    def open(
        cls,
        url: str,
        *,
        prefix: str,
        connect_timeout: float = 0.5,
        socket_timeout: float = 2.0,
        clock: Callable[[], float] = time.time,
        debounce_seconds: float = 0.0,
        max_delay: float = DEBOUNCE_MAX_DELAY,
    ) -> RedisStore:
        """A store for ``url``; connects lazily, so a Redis that is down only makes calls fail.

        Short timeouts and a single quick retry keep a 503 fast when Redis is
        down; options in the URL's query string override them.
        """
        client = aioredis.Redis.from_url(
            url,
            socket_connect_timeout=connect_timeout,
            socket_timeout=socket_timeout,
            retry=Retry(ExponentialBackoff(cap=0.05, base=0.01), retries=1),
            decode_responses=False,
        )
        return cls(
            client,
            prefix=prefix,
            clock=clock,
            debounce_seconds=debounce_seconds,
            max_delay=max_delay,
        )

    def _now_ms(self) -> int:
        return round(self._clock() * 1000)

    def _script(self, body: str) -> AsyncScript:
        # EVALSHA with a fallback to SCRIPT LOAD (https://redis.io/docs/latest/commands/evalsha/)
        return self._client.register_script(_PRELUDE + body)

    @contextlib.asynccontextmanager
    async def _guard(self) -> AsyncIterator[None]:
        if self._closed:  # the client would silently reconnect
            raise StoreUnavailable("redis: store is closed")
        try:
            yield
        except (redis_errors.ConnectionError, redis_errors.TimeoutError, OSError) as error:
            raise StoreUnavailable(f"redis: {type(error).__name__}: {error}") from error
        except redis_errors.ResponseError as error:
            if str(error).startswith(_OUTAGE_REPLIES):
                raise StoreUnavailable(f"redis: {error}") from error
            raise

    async def _ensure_upgraded(self) -> None:
        """Convert what the earlier layout queued: at first use, then once a minute.

        The repeat covers a rolling upgrade, where receivers of the old version
        still queue deliveries the old way for a while; the check is one EXISTS.
        """
        checked = self._upgraded_at
        if checked is not None and time.monotonic() - checked < _UPGRADE_EVERY:
            return
        keys = [self._pending, self._groups]
        await self._upgrade(keys=keys, args=[self._prefix, self._now_ms()])
        self._upgraded_at = time.monotonic()

    async def _run(self, script: AsyncScript, args: Sequence[Any]) -> Any:
        keys = [self._pending, self._groups]
        async with self._guard():
            await self._ensure_upgraded()
            return await script(keys=keys, args=[self._prefix, self._now_ms(), *args])

    # -- Store ------------------------------------------------------------------------

    async def accept(self, delivery: Delivery) -> bool:
        # Accepts of one loop iteration share a pipeline: one write, one read.
        return await self._accepts.submit(delivery)

    def _accept_call(self, delivery: Delivery, *, now: int) -> list[Any]:
        """EVALSHA arguments after the SHA: numkeys, keys, args."""
        p = self._prefix
        group = delivery.group
        keys = [
            self._pending,
            self._groups,
            f"{p}:seen:{delivery.id}",
            f"{p}:d:{delivery.id}",
            f"{p}:q:{delivery.key}",
            f"{p}:meta:{delivery.key}",
            f"{p}:g:{group}",
            f"{p}:quiet:{delivery.key}",
        ]
        args = [
            p,
            now,
            DEDUPE_SECONDS * 1000,
            delivery.key,
            delivery.id,
            delivery.event,
            "0" if delivery.action is None else "1",
            delivery.action or "",
            delivery.body,
            repr(float(delivery.received_at)),
            now + self._debounce_ms,
            now + self._max_delay_ms if self._debounce_ms else now,
            group,
            "1" if self._debounce_ms else "0",
        ]
        return [len(keys), *keys, *args]

    async def _accept_many(self, deliveries: list[Delivery]) -> list[bool | BaseException]:
        results: list[bool | BaseException | None] = [None] * len(deliveries)
        todo = list(range(len(deliveries)))
        async with self._guard():
            await self._ensure_upgraded()
        for _ in range(2):  # a second round after reloading a flushed script
            now = self._now_ms()
            async with self._guard(), self._client.pipeline(transaction=False) as pipe:
                for i in todo:
                    pipe.evalsha(self._accept.sha, *self._accept_call(deliveries[i], now=now))
                replies = await pipe.execute(raise_on_error=False)
            missing = []
            for i, reply in zip(todo, replies, strict=True):
                if isinstance(reply, redis_errors.NoScriptError):
                    missing.append(i)  # not run: Redis restarted or SCRIPT FLUSH
                elif isinstance(reply, BaseException):
                    results[i] = self._failure(reply)
                else:
                    results[i] = int(reply) == 1
            if not missing:
                break
            async with self._guard():
                self._accept.sha = await self._client.script_load(self._accept.script)
            todo = missing
        return [
            StoreUnavailable("redis: accept script could not be loaded") if r is None else r
            for r in results
        ]

    @staticmethod
    def _failure(error: BaseException) -> BaseException:
        if isinstance(error, redis_errors.ResponseError) and str(error).startswith(_OUTAGE_REPLIES):
            return StoreUnavailable(f"redis: {error}")
        return error

    async def claim(self, *, worker: str, lease_seconds: float, spare: bool = False) -> Job | None:
        token = secrets.token_hex(16)
        reply = await self._run(
            self._claim, [worker, token, _ms(lease_seconds), "1" if spare else "0"]
        )
        return None if reply is None else self._job(reply, token=token)

    @staticmethod
    def _job(reply: list[Any], *, token: str) -> Job:
        key = _text(reply[0])
        deliveries = []
        for i in range(2, len(reply), 5):
            delivery_id, event, action, body, at = reply[i : i + 5]
            deliveries.append(
                Delivery(
                    id=_text(delivery_id),
                    event=_text(event),
                    action=None if action is None else _text(action),
                    key=key,
                    body=bytes(body),
                    received_at=float(at),
                )
            )
        return Job(key=key, deliveries=tuple(deliveries), attempts=int(reply[1]), token=token)

    async def complete(self, job: Job) -> None:
        await self._run(self._complete, [job.key, job.token, *job.delivery_ids])

    async def fail(
        self, job: Job, *, error: str, retry_in: float, max_attempts: int
    ) -> DeadLetter | None:
        reply = await self._run(
            self._fail,
            [
                job.key,
                job.token,
                max(0, round(retry_in * 1000)),
                max_attempts,
                error,
                *job.delivery_ids,
            ],
        )
        if isinstance(reply, bytes | str):
            return _letter(reply)
        return None

    async def release(self, job: Job) -> None:
        await self._run(self._release, [job.key, job.token])

    async def defer(self, job: Job, *, until: float) -> None:
        await self._run(self._defer, [job.key, job.token, round(until * 1000)])

    async def extend(self, job: Job, *, lease_seconds: float) -> bool:
        reply = await self._run(self._extend, [job.key, job.token, _ms(lease_seconds)])
        return int(reply) == 1

    async def dead_letters(self) -> list[DeadLetter]:
        async with self._guard():
            raw: list[bytes | str] = await self._client.lrange(self._dead, 0, -1)
        return [_letter(item) for item in raw]

    async def depth(self) -> int:
        async with self._guard():
            return int(await self._client.zcard(self._pending))

    async def lag(self, *, now: float | None = None) -> float:
        if now is None:
            now = self._clock()
        async with self._guard():
            oldest = await self._client.zrange(self._pending, 0, 0, withscores=True)
        if not oldest:
            return 0.0
        return max(0.0, now - float(oldest[0][1]))

    def _kv(self, namespace: str, key: str) -> str:
        check_namespace(namespace)
        return f"{self._prefix}:kv:{namespace}:{key}"

    async def put(
        self, namespace: str, key: str, value: bytes, *, ttl: float | None = None
    ) -> None:
        name = self._kv(namespace, key)
        async with self._guard():
            await self._client.set(name, value, px=None if ttl is None else _ms(ttl))

    async def get(self, namespace: str, key: str) -> bytes | None:
        name = self._kv(namespace, key)
        async with self._guard():
            value = await self._client.get(name)
        if value is None:
            return None
        return value.encode() if isinstance(value, str) else bytes(value)

    async def lock(self, name: str, *, owner: str, ttl: float) -> bool:
        key = f"{self._prefix}:lock:{name}"
        async with self._guard():
            answer = await self._client.eval(_LOCK, 1, key, owner, self._now_ms(), _ms(ttl))
        return bool(answer)

    async def unlock(self, name: str, *, owner: str) -> None:
        key = f"{self._prefix}:lock:{name}"
        async with self._guard():
            await self._client.eval(_UNLOCK, 1, key, owner)

    async def ping(self) -> None:
        async with self._guard():
            await self._client.ping()

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        await self._client.aclose()
