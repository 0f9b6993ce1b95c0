"""The Redis store: the disk store's semantics on a real redis-server, shared by two proxies, and a
proxy that passes requests through while Redis is away and caches again once it is back."""

from __future__ import annotations

import shutil
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import redis

from core.cache.entry import Entry
from core.cache.storage.rediskeys import Layout
from core.cache.storage.redisstore import RedisStore
from core.cache.storage.store import StoreError
from core.config.settings import load
from tests.fakes.ollama_server import FakeOllama
from tests.harness import RunningProxy, events_named, free_port, proxy_in_thread, wait_for
from tests.redis_servers import RedisCluster, RedisServer
from tests.test_store import Clock, make_entry

pytestmark = pytest.mark.skipif(shutil.which("redis-server") is None, reason="redis-server is not installed")

CHAT = {"model": "llama3.2", "messages": [{"role": "user", "content": "hi"}], "options": {"temperature": 0}}


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path)
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(params=["server", "cluster"])
def any_redis(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[RedisServer | RedisCluster]:
    """One redis-server, or a Redis Cluster of three: the store means the same on both."""
    server = RedisServer(tmp_path) if request.param == "server" else RedisCluster(tmp_path)
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def raw(any_redis: RedisServer | RedisCluster) -> Iterator[redis.Redis | redis.RedisCluster]:
    client = any_redis.client()
    yield client
    client.close()


def stored(client: redis.Redis | redis.RedisCluster, layout: Layout) -> bool:
    """Whether any entry is in the store (a cluster's DBSIZE asks one node only)."""
    return any(True for _ in client.scan_iter(match=layout.entry + "*"))


def now_clock() -> Clock:
    return Clock(time.time())


# --- the Store semantics -------------------------------------------------------------------------


def test_an_entry_round_trips_and_is_one_blob_as_on_disk(
    any_redis: RedisServer | RedisCluster, raw: redis.Redis | redis.RedisCluster
) -> None:
    store = RedisStore(any_redis.url)
    store.put(make_entry())
    assert store.get("k1") == make_entry()
    assert raw.get(any_redis.layout.entry + "k1") == make_entry().encode()
    assert store.get("absent") is None
    assert store.count() == 1 and store.volume() > 0
    store.close()
    again = RedisStore(any_redis.url)
    assert again.get("k1") == make_entry()
    again.close()


def test_an_expired_entry_is_not_served_and_redis_drops_it(
    any_redis: RedisServer | RedisCluster, raw: redis.Redis | redis.RedisCluster
) -> None:
    clock = now_clock()
    store = RedisStore(any_redis.url, clock=clock)
    started = clock.now
    entry = make_entry(expires=started + 60)
    store.put(entry)
    assert 0 < raw.pexpiretime(any_redis.layout.entry + "k1") <= round((started + 60) * 1000)
    clock.now = started + 59
    assert store.get("k1") is not None
    clock.now = started + 61
    assert store.get("k1") is None
    assert store.recent() == []
    store.put(make_entry(key="soon", expires=time.time() + 0.2))
    wait_for(lambda: not raw.exists(any_redis.layout.entry + "soon"), "Redis to expire the entry")
    store.put(make_entry(key="forever"))
    assert raw.pttl(any_redis.layout.entry + "forever") == -1  # expires 0: never
    store.close()


def test_an_entry_already_expired_is_not_written(any_redis: RedisServer | RedisCluster) -> None:
    store = RedisStore(any_redis.url)
    store.put(make_entry(expires=time.time() - 1))
    assert store.count() == 0
    store.close()


def test_delete_and_clear_by_model(any_redis: RedisServer | RedisCluster) -> None:
    store = RedisStore(any_redis.url)
    long_stream = make_entry(key="long", model="qwen3:0.6b")
    long_stream.chunks = [b"x\n"] * 3000  # a header longer than what is peeked at to learn the model
    long_stream.offsets_s = [0.001 * i for i in range(3000)]
    store.put_many([make_entry(key="a"), make_entry(key="b"), make_entry(key="c", model="qwen3:0.6b"), long_stream])
    assert store.delete("a") is True
    assert store.delete("a") is False
    assert store.clear("qwen3:0.6b") == 2
    assert store.get("c") is None and store.get("long") is None and store.get("b") is not None
    assert store.clear("qwen3:0.6b") == 0
    assert store.clear() == 1
    assert store.count() == 0 and store.recent() == []
    store.close()


def test_recent_lists_by_last_use_with_hit_counts_batched(
    any_redis: RedisServer | RedisCluster, raw: redis.Redis | redis.RedisCluster
) -> None:
    clock = now_clock()
    store = RedisStore(any_redis.url, clock=clock)
    for index, model in enumerate(["llama3.2:latest", "qwen3:0.6b", "llama3.2:latest"]):
        clock.now += 1
        store.put(make_entry(key=f"k{index}", model=model))
    assert [info["key"] for info in store.recent()] == ["k2", "k1", "k0"]
    assert [info["key"] for info in store.recent(model="llama3.2:latest")] == ["k2", "k0"]
    assert [info["key"] for info in store.recent(limit=1)] == ["k2"]
    hit_at = clock.now + 5
    store.note_hit("k0", hit_at - 1)
    store.note_hit("k0", hit_at)
    assert not raw.hexists(any_redis.layout.hits, "k0")  # a hit costs no write
    first = store.recent()[-1]
    assert first["key"] == "k0" and first["hits"] == 2 and first["last_hit"] == hit_at
    store.flush()
    other = RedisStore(any_redis.url)  # another proxy sees the counts once flushed, and the order they make
    newest = other.recent()[0]
    assert newest["key"] == "k0" and newest["hits"] == 2 and newest["last_hit"] == hit_at
    assert other.recent()[1]["hits"] == 0 and other.recent()[1]["last_hit"] is None
    store.note_hit("k0", hit_at + 1)
    store.close()  # flushes
    assert other.recent()[0]["hits"] == 3
    other.close()


def test_entries_are_read_lazily_and_by_model(any_redis: RedisServer | RedisCluster) -> None:
    store = RedisStore(any_redis.url)
    store.put_many(
        [make_entry(key=f"k{i}", model="qwen3:0.6b" if i % 3 == 0 else "llama3.2:latest") for i in range(1200)]
    )
    every = store.entries()
    assert not isinstance(every, list)
    assert sum(1 for _ in every) == 1200
    theirs = list(store.entries("qwen3:0.6b"))
    assert len(theirs) == 400 and all(entry.model == "qwen3:0.6b" for entry in theirs)
    assert next(store.entries()).chunks == make_entry().chunks
    store.close()


def test_a_lost_redis_fails_writes_misses_reads_and_comes_back(any_redis: RedisServer | RedisCluster) -> None:
    store = RedisStore(any_redis.url)
    store.put(make_entry())
    any_redis.stop()
    with pytest.raises(StoreError, match="cannot reach Redis"):
        store.get("k1")
    assert store.down is not None
    assert store.get("k1") is None  # known to be away: a miss at once
    with pytest.raises(StoreError):
        store.put(make_entry(key="k2"))
    with pytest.raises(StoreError):
        store.ping()
    any_redis.start()
    assert store.ping() is True
    assert store.down is None and store.ping() is False
    store.put(make_entry(key="k2"))
    assert store.get("k2") is not None
    store.close()


def test_a_redis_that_does_not_answer_is_given_up_on(tmp_path: Path) -> None:
    with socket.socket() as silent:  # accepts connections (the kernel's backlog) and never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        store = RedisStore(f"redis://127.0.0.1:{silent.getsockname()[1]}/0")
        with pytest.raises(StoreError, match="Timeout"):
            store.get("k1")
        assert store.down is not None and store.get("k1") is None
        store.close()


def test_a_cluster_none_of_whose_nodes_answers_is_a_store_that_is_down(tmp_path: Path) -> None:
    store = RedisStore(f"redis+cluster://127.0.0.1:{free_port()}")  # opening asks nothing
    with pytest.raises(StoreError, match="cannot reach Redis"):
        store.get("k1")
    assert store.down is not None and store.get("k1") is None  # a miss at once from then on
    with pytest.raises(StoreError):
        store.put(make_entry())
    store.close()


def test_a_cluster_serves_the_store_while_its_other_primaries_are_down(tmp_path: Path) -> None:
    cluster = RedisCluster(tmp_path)
    cluster.start()
    try:
        store = RedisStore(cluster.url)
        store.put_many([make_entry(key="a"), make_entry(key="b", model="qwen3:0.6b")])
        client = cluster.client()
        holder = client.get_node_from_key(cluster.layout.entry).port
        client.close()
        for node in cluster.nodes:
            if node.port != holder:  # nodes that hold none of the store's keys
                node.stop()
        store.note_hit("a", time.time())
        store.flush()
        assert store.ping() is False and store.down is None
        assert store.count() == 2 and store.count_by_model() == {"llama3.2:latest": 1, "qwen3:0.6b": 1}
        assert store.recent()[0]["hits"] == 1 and store.clear("qwen3:0.6b") == 1
        store.close()
    finally:
        cluster.stop()


def test_the_store_setting_takes_disk_or_a_redis_url() -> None:
    assert load({})["cache.store"] == "disk"
    assert load({"cache.store": "redis://:secret@10.0.0.2:6380/3"})["cache.store"] == "redis://:secret@10.0.0.2:6380/3"
    cluster = "redis+cluster://:secret@10.0.0.2:7000"
    assert load({"cache.store": cluster})["cache.store"] == cluster
    wrongs = (
        "redis",
        "http://host:6379",
        "redis://host:6379/x",
        "redis://host:port",
        "redis+cluster://host:7000/3",
        "redis+cluster://host:7000?db=3",
    )
    for wrong in wrongs:  # the last: a cluster has database 0 only
        with pytest.raises(ValueError, match="cache.store"):
            load({"cache.store": wrong})


def test_health_shows_the_store_without_its_password(upstream: tuple[FakeOllama, str], tmp_path: Path) -> None:
    server = RedisServer(tmp_path)
    server.start()
    try:
        client = redis.Redis.from_url(server.url)
        client.config_set("requirepass", "s3cret")
        client.close()
        url = f"redis://:s3cret@127.0.0.1:{server.port}/0"
        with proxy_in_thread(upstream[1], **{"cache.store": url}) as proxy:
            health = httpx.get(proxy.url + "/-/health").json()
            assert health["store"] == {"ok": True, "error": None, "location": f"redis://***@127.0.0.1:{server.port}/0"}
            assert "s3cret" not in httpx.get(proxy.url + "/-/stats").text
    finally:
        server.stop()


# --- proxies on one Redis ------------------------------------------------------------------------


def test_two_proxies_share_hits_and_clears(
    upstream: tuple[FakeOllama, str], any_redis: RedisServer | RedisCluster, raw: redis.Redis | redis.RedisCluster
) -> None:
    fake, upstream_url = upstream
    flags = {"cache.store": any_redis.url}
    with proxy_in_thread(upstream_url, **flags) as one, proxy_in_thread(upstream_url, **flags) as two:
        with one.client() as a, two.client() as b:
            assert a.post("/api/chat", json=CHAT).headers["x-cache"] == "MISS"
            wait_for(lambda: stored(raw, any_redis.layout), "the answer to reach Redis")
            answer = b.post("/api/chat", json=CHAT)
            assert answer.headers["x-cache"] == "HIT"  # a miss on one is a hit on the other
            assert fake.total_calls("/api/chat") == 1
            assert b.post("/api/chat", json=CHAT).headers["x-cache"] == "HIT"  # now from two's memory
            assert two.server is not None and len(two.server.engine.cache.hot) == 1
            assert a.post("/-/clear", json={}, headers=one.auth).json()["removed"] == 1
            wait_for(lambda: len(two.server.engine.cache.hot) == 0, "the clear to reach the other proxy")
            assert b.post("/api/chat", json=CHAT).headers["x-cache"] == "MISS"
            assert fake.total_calls("/api/chat") == 2


def test_a_delete_on_one_proxy_reaches_the_others_memory(
    upstream: tuple[FakeOllama, str], any_redis: RedisServer | RedisCluster, raw: redis.Redis | redis.RedisCluster
) -> None:
    fake, upstream_url = upstream
    flags = {"cache.store": any_redis.url}
    with proxy_in_thread(upstream_url, **flags) as one, proxy_in_thread(upstream_url, **flags) as two:
        with one.client() as a, two.client() as b:
            key = a.post("/api/chat", json=CHAT).headers["x-cache-key"]
            wait_for(lambda: stored(raw, any_redis.layout), "the answer to reach Redis")
            assert b.post("/api/chat", json=CHAT).headers["x-cache"] == "HIT"
            assert a.delete(f"/-/entries/{key}", headers=one.auth).status_code == 200
            assert two.server is not None
            wait_for(lambda: len(two.server.engine.cache.hot) == 0, "the delete to reach the other proxy")
            assert b.post("/api/chat", json=CHAT).headers["x-cache"] == "MISS"


def test_without_redis_requests_pass_through_and_caching_resumes_when_it_returns(
    upstream: tuple[FakeOllama, str], redis_server: RedisServer
) -> None:
    fake, upstream_url = upstream
    with proxy_in_thread(upstream_url, **{"cache.store": redis_server.url}) as proxy, proxy.client() as http:
        assert http.post("/api/chat", json=CHAT).headers["x-cache"] == "MISS"

        def lose_redis() -> None:
            redis_server.stop()
            other = dict(CHAT, messages=[{"role": "user", "content": "while Redis is away"}])
            answer = http.post("/api/chat", json=other)
            assert answer.status_code == 200 and answer.headers["x-cache"] == "MISS"

        told = events_named(proxy.url, 1, lose_redis)
        assert told[0][0] == "store_did_fail"
        health = wait_for(lambda: _health_if(proxy, ok=False), "health to report the lost store")
        assert health["status"] == "degraded" and "cannot reach Redis" in health["store"]["error"]
        for _ in range(2):  # answered, and not from Redis
            assert http.post("/api/chat", json=dict(CHAT, options={"seed": 7})).status_code == 200

        told = events_named(proxy.url, 1, redis_server.start)
        assert told[0][0] == "store_did_recover" and told[0][1]["store"]["ok"] is True
        assert _health_if(proxy, ok=True) is not None
        fresh = dict(CHAT, messages=[{"role": "user", "content": "after Redis came back"}])
        assert http.post("/api/chat", json=fresh).headers["x-cache"] == "MISS"
        assert http.post("/api/chat", json=fresh).headers["x-cache"] == "HIT"
        client = redis.Redis.from_url(redis_server.url)
        wait_for(
            lambda: client.exists(redis_server.layout.entry + key_of(http, fresh)), "the new answer to reach Redis"
        )
        client.close()


def key_of(http: httpx.Client, body: dict[str, object]) -> str:
    return http.post("/api/chat", json=body).headers["x-cache-key"]


def _health_if(proxy: RunningProxy, ok: bool) -> dict[str, object] | None:
    health = httpx.get(proxy.url + "/-/health", timeout=30).json()
    return health if health["store"]["ok"] is ok else None


def test_a_proxy_started_before_redis_caches_once_it_answers(upstream: tuple[FakeOllama, str], tmp_path: Path) -> None:
    server = RedisServer(tmp_path)
    with proxy_in_thread(upstream[1], **{"cache.store": server.url}) as proxy, proxy.client() as http:
        assert _health_if(proxy, ok=False) is not None
        assert http.post("/api/chat", json=CHAT).status_code == 200
        try:
            server.start()
            wait_for(lambda: _health_if(proxy, ok=True), "the store to be used once Redis answers")
            assert http.post("/api/chat", json=dict(CHAT, options={"seed": 1})).headers["x-cache"] == "MISS"
            assert http.post("/api/chat", json=dict(CHAT, options={"seed": 1})).headers["x-cache"] == "HIT"
        finally:
            server.stop()


def test_redis_entries_decode_as_entries(
    any_redis: RedisServer | RedisCluster, raw: redis.Redis | redis.RedisCluster
) -> None:
    store = RedisStore(any_redis.url)
    store.put(make_entry(key="same"))
    assert Entry.decode(raw.get(any_redis.layout.entry + "same")) == make_entry(key="same")
    store.close()
