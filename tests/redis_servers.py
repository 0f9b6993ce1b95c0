"""Real Redis servers of a test's own on 127.0.0.1: one ``redis-server`` (:class:`RedisServer`), or a Redis Cluster
of three (:class:`RedisCluster`); no persistence, files in a temp dir."""

from __future__ import annotations

import subprocess
from pathlib import Path

import redis

from core.cache.storage.rediskeys import CLUSTER, SINGLE, Layout
from tests.harness import free_port, wait_for

SLOTS = 16384


class RedisServer:
    """A ``redis-server`` of the test's own on 127.0.0.1 (no persistence, files in a temp dir)."""

    def __init__(self, directory: Path, cluster: bool = False) -> None:
        self.directory = directory
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.layout: Layout = SINGLE
        self.cluster = cluster  # a node of a cluster (see RedisCluster)
        self.bus_port = free_port() if cluster else None
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        self.process = subprocess.Popen(
            [
                "redis-server",
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.directory),
                "--maxmemory",
                "64mb",
                "--maxmemory-policy",
                "allkeys-lru",
                *(self._cluster_options() if self.cluster else []),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        client = redis.Redis.from_url(self.url)
        try:
            wait_for(lambda: self._answers(client), "redis-server to answer")
        finally:
            client.close()

    def _cluster_options(self) -> list[str]:
        # the cluster bus gets a port of its own: the default, 10,000 above the port, may be taken or too high; the
        # slots of a node that is down do not stop the others (as a user sets it who has no replicas)
        return [
            *("--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf", "--cluster-port", str(self.bus_port)),
            *("--cluster-require-full-coverage", "no"),
        ]

    def _answers(self, client: redis.Redis) -> bool:
        assert self.process is not None and self.process.poll() is None, "redis-server exited"
        try:
            return bool(client.ping())
        except redis.ConnectionError:
            return False

    def client(self) -> redis.Redis:
        return redis.Redis.from_url(self.url)

    def stop(self) -> None:
        if self.process is not None:
            self.process.kill()
            self.process.wait()
            self.process = None


class RedisCluster:
    """Three ``redis-server`` nodes made a Redis Cluster (each a primary for a third of the slots); ``url`` names
    the first, as a user would, and the client finds the others."""

    def __init__(self, directory: Path, nodes: int = 3) -> None:
        self.nodes = [RedisServer(directory / f"node{index}", cluster=True) for index in range(nodes)]
        self.url = f"redis+cluster://127.0.0.1:{self.nodes[0].port}"
        self.layout: Layout = CLUSTER
        self.formed = False  # started again, the nodes take up the cluster from their nodes.conf

    def start(self) -> None:
        try:
            self._form()
        except BaseException:
            self.stop()
            raise

    def _form(self) -> None:
        for node in self.nodes:
            node.start()
        clients = [redis.Redis(host="127.0.0.1", port=node.port) for node in self.nodes]
        try:
            share = SLOTS // len(clients)
            for index, client in enumerate(clients if not self.formed else []):
                last = SLOTS - 1 if index == len(clients) - 1 else (index + 1) * share - 1
                client.execute_command("CLUSTER ADDSLOTSRANGE", index * share, last)
            for node in self.nodes[1:] if not self.formed else []:
                clients[0].execute_command("CLUSTER MEET", "127.0.0.1", node.port, node.bus_port)
            self.formed = True
            wait_for(lambda: all(self._ready(client) for client in clients), "the Redis Cluster to form")
        finally:
            for client in clients:
                client.close()

    def _ready(self, client: redis.Redis) -> bool:
        return client.cluster("info")["cluster_state"] == "ok" and len(client.cluster("nodes")) == len(self.nodes)

    def client(self) -> redis.RedisCluster:
        return redis.RedisCluster(host="127.0.0.1", port=self.nodes[0].port)

    def stop(self) -> None:
        for node in self.nodes:
            node.stop()
