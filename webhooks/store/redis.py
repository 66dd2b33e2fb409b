"""The store on Redis: for several hosts sharing one queue.

Why raw Streams and not a task framework: arq pins ``redis<6`` and, given a job
id that is already queued, keeps the *oldest* job, the opposite of what a
coalescing queue needs (the newest head wins, all deliveries of a key are
handled together); taskiq would bring the same stream mechanism plus a framework
and more pin conflicts. What this store needs is a handful of Lua scripts over
a stream, lists, hashes and sorted sets, each of them atomic.

Data layout (``P`` is the prefix; every key starts with ``P:``)::

    P:seen:<delivery id>   string  dedupe marker, SET NX EX (7 days)
    P:d:<delivery id>      hash    k, ev, ac (absent for no action), body, at, eid
                                   the pending delivery; eid = its stream entry
    P:q:<job key>          list    delivery ids of the key, accept order
    P:pending              zset    delivery id -> received_at: depth and lag
    P:stream               stream  work notices {k: job key[, d: delivery id]},
                                   consumer group "workers"
    P:meta:<job key>       hash    attempts, token, worker, anchor (entry id)
    P:lease:<job key>      string  lease token, SET NX PX
    P:delayed              zset    job key -> due time (ms, Redis clock) of a retry
    P:dead                 list    dead letters, JSON {key, delivery_ids, error,
                                   attempts, at}; kept until an operator trims it
    P:kv:<ns>:<key>        string  key/value documents, SET PX

The stream holds only entries not yet settled: an entry is deleted (XDEL) as
soon as it is acknowledged, so it needs no MAXLEN trimming. A dead letter keeps
the key and the delivery ids (X-GitHub-Delivery GUIDs), not the bodies: the key
says what to evaluate again, and GitHub's delivery log lists each GUID for
redelivery while it keeps it (https://docs.github.com/rest/apps/webhooks).

Flow:

- ``accept`` is one script: SET NX EX on ``P:seen:<id>``
  (https://redis.io/docs/latest/commands/set/), then XADD a notice
  (https://redis.io/docs/latest/commands/xadd/), the delivery hash, RPUSH on
  the key's list and ZADD to ``P:pending``. A script runs atomically
  (https://redis.io/docs/latest/develop/interact/programmability/eval-intro/),
  so the dedupe marker never exists without the queued delivery; if a write
  inside fails anyway, the script deletes what it wrote, the marker included, so
  GitHub's redelivery is not mistaken for a duplicate. An acknowledged write is
  as durable as the server's ``appendonly``/``appendfsync`` settings make it
  (https://redis.io/docs/latest/operate/oss_and_stack/management/persistence/):
  run with ``appendonly yes`` (``appendfsync everysec`` loses at most a second
  on power loss, ``always`` nothing).
- ``claim`` is one script. It moves retries whose delay elapsed back into the
  stream, then takes entries of dead readers with XAUTOCLAIM (idle longer than
  the lease, https://redis.io/docs/latest/commands/xautoclaim/) and new ones
  with XREADGROUP (https://redis.io/docs/latest/commands/xreadgroup/), one at
  a time. For an entry's key it either takes the lease (SET NX PX with a fresh
  token) and returns *every* delivery in ``P:q:<key>``, keeping the entry
  pending in its own PEL as the lease's *anchor*; or, when the key is leased
  elsewhere, waiting out a retry, or already drained, acknowledges and deletes
  the entry (XACK, XDEL). That is safe because the holder re-reads
  ``P:q:<key>`` when it completes, fails or releases and announces the key
  again (XADD) if deliveries arrived meanwhile. The anchor of a live lease is
  left pending, never deleted.
- A worker that dies leaves its anchor pending and its lease expiring. The next
  claim that XAUTOCLAIMs the anchor (or reads a newer entry of the key) finds
  the lease gone but the old token still in ``P:meta``: that counts as a failed
  attempt. ``extend`` renews the lease and XCLAIMs the anchor back
  (https://redis.io/docs/latest/commands/xclaim/), resetting its idle time so a
  live worker's anchor is not reclaimed.
- ``complete``/``fail``/``release``/``extend`` are scripts that first compare
  the token with ``P:meta:<key>`` (a plain DEL would let a worker whose lease
  expired release its successor's lease).
- ``close`` deletes the consumers this instance claimed as, when they hold no
  pending entries (XGROUP DELCONSUMER,
  https://redis.io/docs/latest/commands/xgroup-delconsumer/); otherwise the
  group would collect one consumer per worker name forever.

Time inside the scripts is the Redis server's (TIME), so workers on several
hosts agree on lease and retry deadlines. Scripts compute key names from the
prefix, so the store needs a standalone (or Sentinel-managed) Redis, not Redis
Cluster.
"""

from __future__ import annotations

import contextlib
import json
import secrets
from collections.abc import AsyncIterator, Sequence
from typing import Any

import redis.asyncio as aioredis
import redis.exceptions as redis_errors
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff
from redis.commands.core import AsyncScript

from webhooks.store.base import (
    DEDUPE_SECONDS,
    Batcher,
    DeadLetter,
    Delivery,
    Job,
    StoreUnavailable,
    check_namespace,
)

GROUP = "workers"

#: A claim script examines at most this many stream entries before handing
#: control back (it never holds the server for long); the client calls again.
_SCAN_BUDGET = 64
_CLAIM_ROUNDS = 32

#: Replies that mean "cannot write now", not "this store has a bug".
_OUTAGE_REPLIES = ("OOM", "READONLY", "MISCONF", "MASTERDOWN", "NOREPLICAS", "TRYAGAIN")

# Shared by the scripts below. KEYS[1] is always the stream; ARGV[1] the prefix,
# ARGV[2] the group.
_PRELUDE = """
local P, group, stream = ARGV[1], ARGV[2], KEYS[1]
local function args_from(first)
  local out = {}
  for i = first, #ARGV do out[#out + 1] = ARGV[i] end
  return out
end
local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
-- an entry that carries no work of its own: acknowledge and delete it
local function settle(eid)
  redis.call('XACK', stream, group, eid)
  redis.call('XDEL', stream, eid)
end
-- remove delivered ids from the key's queue and from the stream
local function drop(key, ids)
  local q = P .. ':q:' .. key
  for _, id in ipairs(ids) do
    local d = P .. ':d:' .. id
    local eid = redis.call('HGET', d, 'eid')
    if eid then settle(eid) end
    redis.call('DEL', d)
    redis.call('LREM', q, 1, id)
    redis.call('ZREM', KEYS[2], id)
  end
end
-- end the current lease; announce the key again if deliveries are left
local function finish(key, meta, announce)
  local anchor = redis.call('HGET', meta, 'anchor')
  if anchor then settle(anchor) end
  redis.call('DEL', P .. ':lease:' .. key)
  redis.call('HDEL', meta, 'token', 'worker', 'anchor')
  if redis.call('LLEN', P .. ':q:' .. key) == 0 then
    redis.call('DEL', meta)
  elseif announce then
    redis.call('XADD', stream, '*', 'k', key)
  end
end
"""

# KEYS: stream, pending, seen marker, delivery hash, key queue
# ARGV: prefix, group, dedupe seconds, key, id, event, has action, action, body, received_at
_ACCEPT = """
if redis.call('EXISTS', KEYS[4]) == 1 then return 0 end
if not redis.call('SET', KEYS[3], '1', 'NX', 'EX', ARGV[3]) then return 0 end
local eid = false
local ok, err = pcall(function()
  eid = redis.call('XADD', stream, '*', 'k', ARGV[4], 'd', ARGV[5])
  local fields = {'k', ARGV[4], 'ev', ARGV[6], 'body', ARGV[9], 'at', ARGV[10], 'eid', eid}
  if ARGV[7] == '1' then
    table.insert(fields, 'ac')
    table.insert(fields, ARGV[8])
  end
  redis.call('HSET', KEYS[4], unpack(fields))
  redis.call('RPUSH', KEYS[5], ARGV[5])
  redis.call('ZADD', KEYS[2], ARGV[10], ARGV[5])
end)
if not ok then
  -- undo, marker first: a redelivery must not look like a duplicate
  pcall(redis.call, 'DEL', KEYS[3])
  if eid then pcall(redis.call, 'XDEL', stream, eid) end
  pcall(redis.call, 'DEL', KEYS[4])
  pcall(redis.call, 'LREM', KEYS[5], 0, ARGV[5])
  pcall(redis.call, 'ZREM', KEYS[2], ARGV[5])
  return redis.error_reply(type(err) == 'table' and err.err or tostring(err))
end
return 1
"""

# KEYS: stream, pending, delayed
# ARGV: prefix, group, consumer, token, lease ms, scan budget
# Returns a job {key, attempts, id, event, action, body, at, ...}, nil when
# nothing is ready, or 0 when the budget ran out before deciding.
_CLAIM = """
local consumer, token, lease_ms = ARGV[3], ARGV[4], tonumber(ARGV[5])
local budget = tonumber(ARGV[6])
local delayed = KEYS[3]
local now = now_ms()

for _, key in ipairs(redis.call('ZRANGEBYSCORE', delayed, '-inf', now, 'LIMIT', 0, 100)) do
  redis.call('ZREM', delayed, key)
  redis.call('XADD', stream, '*', 'k', key)
end

local function take(eid, raw)
  local key = nil
  for i = 1, #raw, 2 do
    if raw[i] == 'k' then key = raw[i + 1] end
  end
  if not key then settle(eid) return nil end
  local meta = P .. ':meta:' .. key
  if redis.call('EXISTS', P .. ':lease:' .. key) == 1 then
    -- the live lease's anchor stays pending: it recovers the key if the holder dies
    if redis.call('HGET', meta, 'anchor') ~= eid then settle(eid) end
    return nil
  end
  if redis.call('ZSCORE', delayed, key) then settle(eid) return nil end
  local q = P .. ':q:' .. key
  local ids = redis.call('LRANGE', q, 0, -1)
  if #ids == 0 then
    settle(eid)
    redis.call('DEL', meta)
    return nil
  end
  local prev = redis.call('HMGET', meta, 'token', 'anchor', 'attempts')
  local attempts = tonumber(prev[3] or '0')
  if prev[1] then attempts = attempts + 1 end  -- the previous lease expired under its holder
  if prev[2] and prev[2] ~= eid then settle(prev[2]) end
  redis.call('SET', P .. ':lease:' .. key, token, 'NX', 'PX', lease_ms)
  redis.call('HSET', meta, 'attempts', attempts, 'token', token, 'worker', consumer, 'anchor', eid)
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
      redis.call('ZREM', KEYS[2], id)
    end
  end
  return job
end

local scanned = 0
local cursor = '0-0'
repeat
  local r = redis.call('XAUTOCLAIM', stream, group, consumer, lease_ms, cursor, 'COUNT', 1)
  cursor = r[1]
  for _, entry in ipairs(r[2]) do
    local job = take(entry[1], entry[2])
    if job then return job end
    scanned = scanned + 1
  end
  if scanned >= budget then return 0 end
until cursor == '0-0'

while scanned < budget do
  local r = redis.call('XREADGROUP', 'GROUP', group, consumer, 'COUNT', 1, 'STREAMS', stream, '>')
  if not r then return nil end
  local entry = r[1][2][1]
  local job = take(entry[1], entry[2])
  if job then return job end
  scanned = scanned + 1
end
return 0
"""

# KEYS: stream, pending   ARGV: prefix, group, key, token, delivery ids...
_COMPLETE = """
local key, token = ARGV[3], ARGV[4]
local meta = P .. ':meta:' .. key
if redis.call('HGET', meta, 'token') ~= token then return 0 end
drop(key, args_from(5))
redis.call('HSET', meta, 'attempts', 0)
finish(key, meta, true)
return 1
"""

# KEYS: stream, pending, delayed, dead
# ARGV: prefix, group, key, token, retry ms, max attempts, error, delivery ids...
# Returns 0 (stale token), 1 (retry scheduled) or the dead letter's JSON.
_FAIL = """
local key, token = ARGV[3], ARGV[4]
local meta = P .. ':meta:' .. key
if redis.call('HGET', meta, 'token') ~= token then return 0 end
local attempts = tonumber(redis.call('HGET', meta, 'attempts') or '0') + 1
local now = now_ms()
if attempts < tonumber(ARGV[6]) then
  redis.call('HSET', meta, 'attempts', attempts)
  redis.call('ZADD', KEYS[3], now + tonumber(ARGV[5]), key)
  finish(key, meta, false)
  return 1
end
local ids = args_from(8)
drop(key, ids)
local letter = cjson.encode({key = key, delivery_ids = ids, error = ARGV[7],
                             attempts = attempts, at = now / 1000})
redis.call('RPUSH', KEYS[4], letter)
-- deliveries that arrived meanwhile get a fresh start (a new push may fix it)
redis.call('HSET', meta, 'attempts', 0)
finish(key, meta, true)
return letter
"""

# KEYS: stream, pending   ARGV: prefix, group, key, token
_RELEASE = """
local key, token = ARGV[3], ARGV[4]
local meta = P .. ':meta:' .. key
if redis.call('HGET', meta, 'token') ~= token then return 0 end
finish(key, meta, true)
return 1
"""

# KEYS: stream, pending   ARGV: prefix, group, key, token, lease ms
_EXTEND = """
local key, token = ARGV[3], ARGV[4]
local meta = P .. ':meta:' .. key
if redis.call('HGET', meta, 'token') ~= token then return 0 end
redis.call('SET', P .. ':lease:' .. key, token, 'PX', tonumber(ARGV[5]))
local held = redis.call('HMGET', meta, 'anchor', 'worker')
if held[1] and held[2] then
  -- resets the anchor's idle time, so XAUTOCLAIM leaves it to its live holder
  redis.call('XCLAIM', stream, group, held[2], 0, held[1], 'JUSTID')
end
return 1
"""

# KEYS: stream, pending   ARGV: prefix, group, consumer names...
# Consumers live in the group until deleted; drop the idle ones this instance
# used. One with pending entries keeps them: they may anchor leases.
_FORGET = """
for _, consumer in ipairs(args_from(3)) do
  if #redis.call('XPENDING', stream, group, '-', '+', 1, consumer) == 0 then
    redis.call('XGROUP', 'DELCONSUMER', stream, group, consumer)
  end
end
return 1
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


# Take the lock when free or already ours (renewing it); KEYS: lock  ARGV: owner, ttl ms
_LOCK = """
local holder = redis.call('GET', KEYS[1])
if holder and holder ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return 1
"""
# Drop the lock only if it is still ours.  KEYS: lock  ARGV: owner
_UNLOCK = """
if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('DEL', KEYS[1]) end
return 1
"""


class RedisStore:
    """:class:`webhooks.store.base.Store` on Redis; create with :meth:`open`."""

    def __init__(self, client: aioredis.Redis, *, prefix: str) -> None:
        self._client = client
        self._prefix = prefix
        self._stream = f"{prefix}:stream"
        self._pending = f"{prefix}:pending"
        self._delayed = f"{prefix}:delayed"
        self._dead = f"{prefix}:dead"
        self._group_ready = False
        self._closed = False
        self._accept = self._script(_ACCEPT)
        self._claim = self._script(_CLAIM)
        self._complete = self._script(_COMPLETE)
        self._fail = self._script(_FAIL)
        self._release = self._script(_RELEASE)
        self._extend = self._script(_EXTEND)
        self._forget = self._script(_FORGET)
        self._accepts: Batcher[Delivery, bool] = Batcher(self._accept_many)
        self._consumers: set[str] = set()

    @classmethod
    def open(
        cls,
        url: str,
        *,
        prefix: str,
        connect_timeout: float = 0.5,
        socket_timeout: float = 2.0,
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
        return cls(client, prefix=prefix)

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

    async def _ensure_group(self) -> None:
        if self._group_ready:
            return
        try:
            # id 0: entries added before the group existed are work too
            # (https://redis.io/docs/latest/commands/xgroup-create/)
            await self._client.xgroup_create(self._stream, GROUP, id="0", mkstream=True)
        except redis_errors.ResponseError as error:
            if not str(error).startswith("BUSYGROUP"):
                raise
        self._group_ready = True

    async def _run(self, script: AsyncScript, keys: Sequence[str], args: Sequence[Any]) -> Any:
        all_keys = [self._stream, self._pending, *keys]
        all_args = [self._prefix, GROUP, *args]
        async with self._guard():
            await self._ensure_group()
            try:
                return await script(keys=all_keys, args=all_args)
            except redis_errors.ResponseError as error:
                if "NOGROUP" not in str(error):
                    raise
            # Someone deleted the stream (FLUSHDB, a cleanup): recreate the group once.
            self._group_ready = False
            await self._ensure_group()
            return await script(keys=all_keys, args=all_args)

    # -- Store ------------------------------------------------------------------------

    async def accept(self, delivery: Delivery) -> bool:
        # Accepts of one loop iteration share a pipeline: one write, one read.
        return await self._accepts.submit(delivery)

    def _accept_call(self, delivery: Delivery) -> list[Any]:
        """EVALSHA arguments after the SHA: numkeys, keys, args."""
        p = self._prefix
        keys = [
            self._stream,
            self._pending,
            f"{p}:seen:{delivery.id}",
            f"{p}:d:{delivery.id}",
            f"{p}:q:{delivery.key}",
        ]
        args = [
            p,
            GROUP,
            DEDUPE_SECONDS,
            delivery.key,
            delivery.id,
            delivery.event,
            "0" if delivery.action is None else "1",
            delivery.action or "",
            delivery.body,
            repr(float(delivery.received_at)),
        ]
        return [len(keys), *keys, *args]

    async def _accept_many(self, deliveries: list[Delivery]) -> list[bool | BaseException]:
        # no group needed: XADD works without one, and claim creates it
        results: list[bool | BaseException | None] = [None] * len(deliveries)
        todo = list(range(len(deliveries)))
        for _ in range(2):  # a second round after reloading a flushed script
            async with self._guard(), self._client.pipeline(transaction=False) as pipe:
                for i in todo:
                    pipe.evalsha(self._accept.sha, *self._accept_call(deliveries[i]))
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

    async def claim(self, *, worker: str, lease_seconds: float) -> Job | None:
        token = secrets.token_hex(16)
        self._consumers.add(worker)
        for _ in range(_CLAIM_ROUNDS):
            reply = await self._run(
                self._claim, [self._delayed], [worker, token, _ms(lease_seconds), _SCAN_BUDGET]
            )
            if reply is None:
                return None
            if isinstance(reply, list):
                return self._job(reply, token=token)
        return None  # a backlog of stale notices; the next claim continues

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
        await self._run(self._complete, [], [job.key, job.token, *job.delivery_ids])

    async def fail(
        self, job: Job, *, error: str, retry_in: float, max_attempts: int
    ) -> DeadLetter | None:
        reply = await self._run(
            self._fail,
            [self._delayed, self._dead],
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
        await self._run(self._release, [], [job.key, job.token])

    async def extend(self, job: Job, *, lease_seconds: float) -> bool:
        reply = await self._run(self._extend, [], [job.key, job.token, _ms(lease_seconds)])
        return int(reply) == 1

    async def dead_letters(self) -> list[DeadLetter]:
        async with self._guard():
            raw: list[bytes | str] = await self._client.lrange(self._dead, 0, -1)
        return [_letter(item) for item in raw]

    async def depth(self) -> int:
        async with self._guard():
            return int(await self._client.zcard(self._pending))

    async def lag(self, *, now: float) -> float:
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
            answer = await self._client.eval(_LOCK, 1, key, owner, _ms(ttl))
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
        if self._consumers and self._group_ready:
            # best effort: a Redis that is down keeps them, which costs a little memory
            with contextlib.suppress(StoreUnavailable, redis_errors.RedisError):
                await self._run(self._forget, [], sorted(self._consumers))
        self._closed = True
        await self._client.aclose()
