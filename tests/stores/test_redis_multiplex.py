"""MultiplexedRedis: one pipelined connection that answers like redis-py and fails like it.

Replies, concurrency and scripts run against the shared Redis at 127.0.0.1:6379 under
a key prefix of the test's own; anything that pauses, flushes, kills or locks a server
runs against a private ``redis-server``. Clients whose failures must be prompt get
30 s timeouts, so a 5 s hang guard can only pass if the failure did not wait for them.
"""

from __future__ import annotations

import asyncio
import secrets
import subprocess
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import redis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

from seawall.stores import redis_keys
from seawall.stores.redis_endpoint import Endpoint
from seawall.stores.redis_multiplex import MultiplexedRedis
from tests.ports import free_port
from tests.private_redis import PrivateRedis
from tests.redis_keyspace import REDIS_URL, delete_prefix

HANG_GUARD_S = 5
# Long enough that no failure a test calls prompt can come from a timeout.
PATIENT_S = 30.0


@pytest.fixture
async def prefix() -> AsyncIterator[str]:
    """A key prefix of this test's own on the shared Redis, cleared afterwards."""
    key_prefix = f"{redis_keys.PREFIX}test-{secrets.token_hex(6)}:"
    yield key_prefix
    await delete_prefix(key_prefix)


@pytest.fixture
async def shared() -> AsyncIterator[MultiplexedRedis]:
    """A client of the shared Redis."""
    client = MultiplexedRedis(REDIS_URL)
    yield client
    await client.aclose()


async def echo_many(client: MultiplexedRedis, count: int, tag: str = "") -> None:
    """Send ``count`` ECHOs at once and check each got its own reply."""
    async with asyncio.timeout(HANG_GUARD_S):
        replies = await asyncio.gather(*(client.execute("ECHO", f"{tag}{i}") for i in range(count)))
    assert replies == [f"{tag}{i}".encode() for i in range(count)]


async def until_answering(client: MultiplexedRedis) -> None:
    """Retry a PING until the client gets an answer (Redis is coming back)."""
    async with asyncio.timeout(HANG_GUARD_S):
        while True:
            try:
                assert await client.execute("PING") == b"PONG"
                return
            except (RedisConnectionError, RedisTimeoutError):
                await asyncio.sleep(0.05)


def pause(server: PrivateRedis, milliseconds: int) -> None:
    """Make ``server`` hold every client's commands for a while (CLIENT PAUSE ALL)."""
    admin = server.client()
    try:
        admin.execute_command("CLIENT", "PAUSE", milliseconds, "ALL")
    finally:
        admin.close()


def unpause(server: PrivateRedis) -> None:
    """End a CLIENT PAUSE early."""
    admin = server.client()
    try:
        admin.execute_command("CLIENT", "UNPAUSE")
    finally:
        admin.close()


async def started(task: asyncio.Task[object]) -> None:
    """Let ``task`` run until it waits for its reply."""
    for _ in range(3):
        await asyncio.sleep(0)
    assert not task.done()


# Replies and errors.


async def test_commands_return_redis_py_shaped_values(
    shared: MultiplexedRedis, prefix: str
) -> None:
    key, counter, items = f"{prefix}key", f"{prefix}counter", f"{prefix}list"

    assert await shared.execute("SET", key, "héllo", "EX", 60) == b"OK"
    assert await shared.execute("GET", key) == "héllo".encode()
    assert await shared.execute("GET", f"{prefix}missing") is None
    assert await shared.execute("INCR", counter) == 1
    assert await shared.execute("INCRBY", counter, 41) == 42
    assert await shared.execute("INCRBYFLOAT", f"{prefix}float", 1.5) == b"1.5"
    assert await shared.execute("RPUSH", items, b"a", b"\x00\xff") == 2
    assert await shared.execute("LRANGE", items, 0, -1) == [b"a", b"\x00\xff"]
    assert await shared.execute("LRANGE", f"{prefix}missing", 0, -1) == []
    assert await shared.execute("MGET", key, f"{prefix}missing") == ["héllo".encode(), None]
    await shared.execute("HSET", f"{prefix}hash", "field", "value")
    assert await shared.hget(f"{prefix}hash", "field") == b"value"
    assert await shared.hget(f"{prefix}hash", "other") is None


async def test_an_error_reply_raises_response_error_and_the_next_call_gets_its_own_reply(
    shared: MultiplexedRedis, prefix: str
) -> None:
    key = f"{prefix}text"
    await shared.execute("SET", key, "not a number")

    with pytest.raises(ResponseError, match=r"^ERR value is not an integer or out of range$"):
        await shared.execute("INCR", key)
    assert await shared.execute("GET", key) == b"not a number"
    with pytest.raises(ResponseError, match=r"^WRONGTYPE Operation against a key holding"):
        await shared.execute("LPUSH", key, "x")
    with pytest.raises(ResponseError, match="unknown command 'NOSUCHCOMMAND'"):
        await shared.execute("NOSUCHCOMMAND")
    assert await shared.execute("ECHO", "after") == b"after"


async def test_errors_among_concurrent_calls_reach_only_their_own_callers(
    shared: MultiplexedRedis, prefix: str
) -> None:
    key = f"{prefix}text"
    await shared.execute("SET", key, "not a number")

    outcomes = await asyncio.gather(
        *(
            shared.execute("INCR", key) if i % 3 == 0 else shared.execute("ECHO", str(i))
            for i in range(30)
        ),
        return_exceptions=True,
    )

    for i, outcome in enumerate(outcomes):
        if i % 3 == 0:
            assert isinstance(outcome, ResponseError)
        else:
            assert outcome == str(i).encode()


async def test_a_value_of_several_megabytes_round_trips(
    shared: MultiplexedRedis, prefix: str
) -> None:
    value = secrets.token_bytes(3 * 1024 * 1024)

    await shared.execute("SET", f"{prefix}big", value, "EX", 60)

    assert await shared.execute("GET", f"{prefix}big") == value
    assert await shared.execute("ECHO", "next") == b"next"


# Concurrency and cancellation.


async def test_a_thousand_concurrent_calls_share_one_connection_and_get_their_own_replies() -> None:
    name = f"seawall-test-{secrets.token_hex(4)}"
    client = MultiplexedRedis(REDIS_URL, client_name=name)
    try:
        assert await client.execute("PING") == b"PONG"
        await echo_many(client, 1000)

        clients = (await client.execute("CLIENT", "LIST")).decode().splitlines()
        assert sum(f" name={name} " in line for line in clients) == 1
    finally:
        await client.aclose()


async def test_a_thousand_concurrent_first_calls_make_one_connection() -> None:
    name = f"seawall-test-{secrets.token_hex(4)}"
    client = MultiplexedRedis(REDIS_URL, client_name=name)
    try:
        # Every call starts before any connection exists.
        await echo_many(client, 1000, tag="first-")

        clients = (await client.execute("CLIENT", "LIST")).decode().splitlines()
        assert sum(f" name={name} " in line for line in clients) == 1
    finally:
        await client.aclose()


async def test_a_caller_cancelled_while_waiting_does_not_shift_the_replies_of_others(
    private_redis: PrivateRedis,
) -> None:
    client = MultiplexedRedis(private_redis.url, socket_timeout_s=PATIENT_S)
    try:
        assert await client.execute("PING") == b"PONG"
        pause(private_redis, 300)
        # Written to Redis, but held there until the pause ends.
        calls = [asyncio.create_task(client.execute("ECHO", f"call-{i}")) for i in range(20)]
        await started(calls[0])
        for i in (0, 7, 19):
            calls[i].cancel()

        async with asyncio.timeout(HANG_GUARD_S):
            outcomes = await asyncio.gather(*calls, return_exceptions=True)

        for i, outcome in enumerate(outcomes):
            if i in (0, 7, 19):
                assert isinstance(outcome, asyncio.CancelledError)
            else:
                assert outcome == f"call-{i}".encode()
        await echo_many(client, 50, tag="after-")
    finally:
        await client.aclose()


# Scripts.


async def test_a_registered_script_runs_with_keys_and_args(
    shared: MultiplexedRedis, prefix: str
) -> None:
    script = shared.register_script(
        "redis.call('SET', KEYS[1], ARGV[1]) "
        "return {redis.call('GET', KEYS[1]), tonumber(ARGV[2]) * 2, #KEYS}"
    )

    assert await script([f"{prefix}a", f"{prefix}b"], ["stored", 21]) == [b"stored", 42, 2]
    assert await script(keys=[f"{prefix}a"], args=[b"again", 1.5]) == [b"again", 3, 1]
    assert await shared.execute("GET", f"{prefix}a") == b"again"


async def test_a_script_error_is_raised_and_the_script_is_not_run_twice(
    shared: MultiplexedRedis, prefix: str
) -> None:
    counter = f"{prefix}runs"
    script = shared.register_script(
        "redis.call('INCR', KEYS[1]) return redis.error_reply('over the limit')"
    )

    with pytest.raises(ResponseError, match="over the limit"):
        await script([counter])

    assert await shared.execute("GET", counter) == b"1"


async def test_a_script_still_runs_after_redis_forgets_it(private_redis: PrivateRedis) -> None:
    client = MultiplexedRedis(private_redis.url)
    admin = private_redis.client()
    script = client.register_script(
        "return redis.call('INCRBY', KEYS[1], ARGV[1])  -- " + secrets.token_hex(4)
    )
    try:
        # A fresh server has never seen it: the first call loads it.
        assert await script(["counter"], [1]) == 1
        assert await script(["counter"], [1]) == 2
        admin.script_flush()

        assert await script(["counter"], [10]) == 12
        admin.script_flush()
        outcomes = await asyncio.gather(*(script(["counter"], [1]) for _ in range(10)))
        assert sorted(outcomes) == list(range(13, 23))
        assert await client.execute("GET", "counter") == b"22"
        await echo_many(client, 20)
    finally:
        admin.close()
        await client.aclose()


# Outages.


async def test_losing_redis_fails_calls_promptly_and_the_same_client_reconnects(
    private_redis: PrivateRedis,
) -> None:
    client = MultiplexedRedis(
        private_redis.url, connect_timeout_s=PATIENT_S, socket_timeout_s=PATIENT_S
    )
    try:
        assert await client.execute("SET", "before", "crash") == b"OK"
        pause(private_redis, 10_000)
        in_flight = asyncio.create_task(client.execute("ECHO", "in flight"))
        await started(in_flight)

        private_redis.kill()

        async with asyncio.timeout(HANG_GUARD_S):
            with pytest.raises(RedisConnectionError, match="lost the connection"):
                await in_flight
            for _ in range(3):
                with pytest.raises(RedisConnectionError, match="cannot connect to Redis"):
                    await client.execute("PING")

        private_redis.start()  # same port; it comes back empty

        async with asyncio.timeout(HANG_GUARD_S):
            assert await client.execute("GET", "before") is None
        await echo_many(client, 100)
    finally:
        await client.aclose()


async def test_a_call_redis_does_not_answer_times_out_and_the_client_recovers(
    private_redis: PrivateRedis,
) -> None:
    client = MultiplexedRedis(private_redis.url, connect_timeout_s=1.0, socket_timeout_s=0.3)
    try:
        assert await client.execute("PING") == b"PONG"
        pause(private_redis, 2000)

        async with asyncio.timeout(HANG_GUARD_S):
            outcomes = await asyncio.gather(
                client.execute("ECHO", "first"),
                client.execute("ECHO", "second"),
                return_exceptions=True,
            )
        # Every call in flight fails with the oldest: the connection is gone.
        assert all(isinstance(o, RedisTimeoutError) for o in outcomes), outcomes
        assert "did not answer within 0.3 s" in str(outcomes[0])

        await until_answering(client)
        await echo_many(client, 100)
    finally:
        await client.aclose()


async def test_a_server_that_stops_answering_the_set_up_fails_the_call(
    private_redis: PrivateRedis,
) -> None:
    # Redis accepts the connection but holds CLIENT SETNAME until the pause ends.
    pause(private_redis, 3000)
    client = MultiplexedRedis(private_redis.url, connect_timeout_s=0.3, socket_timeout_s=PATIENT_S)
    try:
        async with asyncio.timeout(HANG_GUARD_S):
            with pytest.raises(RedisConnectionError, match="timed out connecting to Redis"):
                await client.execute("PING")
        unpause(private_redis)
        await until_answering(client)
        await echo_many(client, 20)
    finally:
        await client.aclose()


async def test_nothing_listening_raises_connection_error_promptly() -> None:
    port = free_port()
    client = MultiplexedRedis(
        f"redis://127.0.0.1:{port}/0", connect_timeout_s=PATIENT_S, socket_timeout_s=PATIENT_S
    )
    try:
        async with asyncio.timeout(HANG_GUARD_S):
            with pytest.raises(
                RedisConnectionError, match=f"cannot connect to Redis at 127.0.0.1:{port}"
            ):
                await client.execute("PING")
            # Each call tries again, and fails the same way.
            with pytest.raises(RedisConnectionError):
                await client.execute("PING")
    finally:
        await client.aclose()


# URLs, databases and passwords.


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("redis://cache.internal:6380/3", Endpoint(host="cache.internal", port=6380, db=3)),
        ("redis://:secret@cache/0", Endpoint(host="cache", password="secret")),
        (
            "redis://seawall:s%40cret@cache",
            Endpoint(host="cache", username="seawall", password="s@cret"),
        ),
        ("redis://cache/?db=5", Endpoint(host="cache", db=5)),
        ("unix:///tmp/x.sock?db=2", Endpoint(path="/tmp/x.sock", db=2)),
        (
            "rediss://cache.example.com:6390",
            Endpoint(host="cache.example.com", port=6390, tls=True),
        ),
        ("redis://[::1]:7000/1", Endpoint(host="::1", port=7000, db=1)),
    ],
)
def test_endpoint_is_read_from_the_url(url: str, expected: Endpoint) -> None:
    assert Endpoint.from_url(url) == expected


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("http://127.0.0.1:6379/0", "unsupported Redis URL scheme 'http'"),
        ("127.0.0.1:6379", "unsupported Redis URL scheme"),
        ("redis://127.0.0.1:6379/cache", "the Redis database must be a number, got 'cache'"),
    ],
)
def test_a_bad_url_raises_value_error_naming_the_problem(url: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Endpoint.from_url(url)
    with pytest.raises(ValueError, match=message):
        MultiplexedRedis(url)


async def test_the_database_in_the_url_is_the_one_used(prefix: str) -> None:
    client = MultiplexedRedis("redis://127.0.0.1:6379/1")
    db0 = redis.Redis(host="127.0.0.1", port=6379, db=0)
    db1 = redis.Redis(host="127.0.0.1", port=6379, db=1)
    key = f"{prefix}in-db-1"
    try:
        await client.execute("SET", key, b"one", "EX", 60)

        assert db1.get(key) == b"one"
        assert db0.get(key) is None
    finally:
        db1.delete(key)
        db0.close()
        db1.close()
        await client.aclose()


def _answers(client: redis.Redis) -> bool:
    try:
        return bool(client.ping())
    except redis.RedisError:
        return False


@pytest.fixture
def unix_redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A private Redis listening only on a Unix socket; its path."""
    root = tmp_path_factory.mktemp("unix-redis")
    socket_path = root / "redis.sock"
    options = ["--port", "0", "--unixsocket", str(socket_path), "--save", "", "--appendonly", "no"]
    with (root / "redis.log").open("ab") as log:
        process = subprocess.Popen(
            ["redis-server", *options], stdout=log, stderr=subprocess.STDOUT, cwd=root
        )
    try:
        admin = redis.Redis(unix_socket_path=str(socket_path), socket_timeout=2)
        try:
            deadline = time.monotonic() + 10
            while not _answers(admin):
                if time.monotonic() > deadline:
                    raise AssertionError("the Unix-socket redis-server did not start")
                time.sleep(0.02)
        finally:
            admin.close()
        yield socket_path
    finally:
        process.kill()
        process.wait(timeout=10)


async def test_a_unix_socket_url_connects_and_selects_its_database(unix_redis: Path) -> None:
    client = MultiplexedRedis(f"unix://{unix_redis}?db=2")
    admin = redis.Redis(unix_socket_path=str(unix_redis), db=2)
    try:
        await client.execute("SET", "where", b"db 2")

        assert admin.get("where") == b"db 2"
        await echo_many(client, 20)
    finally:
        admin.close()
        await client.aclose()


async def test_a_password_in_the_url_authenticates_and_a_wrong_one_is_refused_clearly(
    private_redis: PrivateRedis,
) -> None:
    admin = private_redis.client()
    admin.config_set("requirepass", "s3cret")
    admin.close()
    where = f"127.0.0.1:{private_redis.port}"
    right = MultiplexedRedis(f"redis://:s3cret@{where}/0")
    as_user = MultiplexedRedis(f"redis://default:s3cret@{where}/0")
    wrong = MultiplexedRedis(f"redis://:wrong@{where}/0", socket_timeout_s=PATIENT_S)
    missing = MultiplexedRedis(f"redis://{where}/0", socket_timeout_s=PATIENT_S)
    try:
        assert await right.execute("PING") == b"PONG"
        assert await as_user.execute("PING") == b"PONG"
        async with asyncio.timeout(HANG_GUARD_S):
            with pytest.raises(
                RedisConnectionError, match="refused the connection set-up: WRONGPASS"
            ):
                await wrong.execute("PING")
            with pytest.raises(RedisConnectionError, match="refused the connection set-up: NOAUTH"):
                await missing.execute("PING")
    finally:
        for client in (right, as_user, wrong, missing):
            await client.aclose()


# Closing.


async def test_calls_after_aclose_raise_connection_error(shared: MultiplexedRedis) -> None:
    assert await shared.execute("PING") == b"PONG"

    await shared.aclose()

    with pytest.raises(RedisConnectionError, match="closed"):
        await shared.execute("PING")


async def test_aclose_before_any_call_makes_later_calls_raise() -> None:
    client = MultiplexedRedis(REDIS_URL)

    await client.aclose()

    with pytest.raises(RedisConnectionError, match="closed"):
        await client.execute("PING")


async def test_aclose_fails_the_calls_in_flight(private_redis: PrivateRedis) -> None:
    client = MultiplexedRedis(private_redis.url, socket_timeout_s=PATIENT_S)
    assert await client.execute("PING") == b"PONG"
    pause(private_redis, 10_000)
    in_flight = asyncio.create_task(client.execute("ECHO", "never answered"))
    await started(in_flight)

    await client.aclose()

    async with asyncio.timeout(HANG_GUARD_S):
        with pytest.raises(RedisConnectionError, match="closed"):
            await in_flight


async def test_aclose_while_connecting_leaves_no_connection_open(
    private_redis: PrivateRedis,
) -> None:
    name = f"seawall-test-{secrets.token_hex(4)}"
    client = MultiplexedRedis(private_redis.url, client_name=name)
    connecting = asyncio.create_task(client.execute("PING"))
    await asyncio.sleep(0)  # the connection is being made

    await client.aclose()

    async with asyncio.timeout(HANG_GUARD_S):
        await asyncio.gather(connecting, return_exceptions=True)
        with pytest.raises(RedisConnectionError, match="closed"):
            await client.execute("PING")
    admin = private_redis.client()
    try:
        assert f"name={name} " not in admin.execute_command("CLIENT", "LIST").decode()
    finally:
        admin.close()
