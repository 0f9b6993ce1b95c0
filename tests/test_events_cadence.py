"""How often ``/-/events`` carries stats: every second while something happens, less often once the
engine has been quiet a while (an idle tray app and engine then wake 5x less), and at once again when a
request comes."""

from __future__ import annotations

import json
from collections.abc import Iterator

import httpx
import pytest

from core.engine import reporting
from core.observe.events import EventHub
from tests.fakes.ollama_server import FakeOllama
from tests.harness import RunningProxy, proxy_in_thread

CHAT = {"model": "llama3.2", "stream": False, "messages": [{"role": "user", "content": "hi"}]}
QUIET_AFTER_S, QUIET_INTERVAL_S = 2.0, 4.0  # shorter than the engine's own, so the test is quick


def test_the_hub_tells_when_something_last_happened() -> None:
    hub = EventHub()
    at = hub.active_at
    hub.publish("stats", {})
    assert hub.active_at == at  # the periodic snapshot is not news
    hub.publish("entry_did_store", {})
    assert hub.active_at > at
    at = hub.active_at
    with hub.subscribe():
        assert hub.active_at > at  # a new subscriber wants live figures


@pytest.fixture
def quiet_proxy(upstream: tuple[FakeOllama, str], monkeypatch: pytest.MonkeyPatch) -> Iterator[RunningProxy]:
    monkeypatch.setattr(reporting, "QUIET_AFTER_S", QUIET_AFTER_S)
    monkeypatch.setattr(reporting, "QUIET_EVENT_INTERVAL_S", QUIET_INTERVAL_S)
    with proxy_in_thread(upstream[1]) as running:
        yield running


def _stats(lines: Iterator[str]) -> Iterator[dict[str, object]]:
    name = ""
    for line in lines:
        if line.startswith("event: "):
            name = line.removeprefix("event: ")
        elif line.startswith("data: ") and name == "stats":
            yield json.loads(line.removeprefix("data: "))


def test_stats_slow_down_while_quiet_and_speed_up_on_a_request(quiet_proxy: RunningProxy) -> None:
    with httpx.stream("GET", quiet_proxy.url + "/-/events", timeout=30) as events:
        snapshots = _stats(events.iter_lines())
        previous = float(next(snapshots)["uptime_s"])  # type: ignore[arg-type]
        gaps: list[float] = []
        while not gaps or gaps[-1] < QUIET_INTERVAL_S - 0.5:  # quiet: one snapshot each QUIET_INTERVAL_S
            uptime = float(next(snapshots)["uptime_s"])  # type: ignore[arg-type]
            gaps.append(uptime - previous)
            previous = uptime
        assert all(gap >= 0.5 for gap in gaps[1:])  # never faster than once a second
        with quiet_proxy.client() as http:
            assert http.post("/api/chat", json=CHAT).status_code == 200
        after = next(snapshots)
    assert after["totals"]["requests"] == 1  # type: ignore[index]
    assert float(after["uptime_s"]) - previous < QUIET_INTERVAL_S - 0.5  # type: ignore[arg-type]


def test_stats_stay_live_while_an_answer_is_being_generated(
    quiet_proxy: RunningProxy, upstream: tuple[FakeOllama, str]
) -> None:
    """A long generation sends no event until it ends; the charts must follow Ollama's CPU meanwhile."""
    import threading

    upstream[0].configure(chunk_delay_ms=100, tokens=100)  # about ten seconds of answer
    with httpx.stream("GET", quiet_proxy.url + "/-/events", timeout=30) as events:
        snapshots = _stats(events.iter_lines())
        previous = float(next(snapshots)["uptime_s"])  # type: ignore[arg-type]
        while True:  # first quiet: snapshots QUIET_INTERVAL_S apart
            uptime = float(next(snapshots)["uptime_s"])  # type: ignore[arg-type]
            gap, previous = uptime - previous, uptime
            if gap >= QUIET_INTERVAL_S - 0.5:
                break
        asking = threading.Thread(
            target=lambda: httpx.post(quiet_proxy.url + "/api/chat", timeout=60, json={**CHAT, "stream": True})
        )
        asking.start()
        gaps = []
        for snapshot in snapshots:  # while the answer streams: about once a second, for longer than QUIET_AFTER_S
            uptime = float(snapshot["uptime_s"])  # type: ignore[arg-type]
            gaps.append(uptime - previous)
            previous = uptime
            if sum(gaps) > QUIET_AFTER_S + QUIET_INTERVAL_S:
                break
        asking.join()
    assert max(gaps[1:]) < QUIET_INTERVAL_S - 0.5, gaps
