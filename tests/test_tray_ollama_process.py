"""Stop, Start and the log of the Ollama that Ollacache runs, with `ollacache serve` and the fake `ollama`."""

from __future__ import annotations

import httpx
import psutil

from tests.fakes.ollama_server import FakeOllama
from tests.harness import proxy_process
from tests.test_supervisor_process import CHAT, FAKE_OLLAMA, fake_python, ollama_state, running, supervised, wait_for

__all__ = ["fake_python"]  # the autouse fixture: every fake `ollama` runs on the test's interpreter


def gone(pid: int) -> bool:
    return not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE


def test_a_stopped_ollama_stays_stopped_until_started_again() -> None:
    context, upstream = supervised()
    with context as proxy:
        first = wait_for(running(proxy), "Ollama to run")
        assert httpx.post(proxy.url + "/-/ollama/stop").status_code == 401
        stopped = httpx.post(proxy.url + "/-/ollama/stop", headers=proxy.auth, timeout=60)
        assert stopped.status_code == 200
        state = stopped.json()["ollama"]  # the answer comes once it has exited
        assert state["state"] == "stopped" and state["reason"].startswith("stopped by the user")
        assert state["pid"] is None and gone(first["pid"])
        with proxy.client() as http:  # a request does not wait for it: it is told why
            failed = http.post("/api/chat", json=CHAT)
        assert failed.status_code == 502 and "stopped by the user" in failed.json()["error"]
        refused = httpx.post(proxy.url + "/-/ollama/restart", headers=proxy.auth, timeout=60)
        assert refused.status_code == 409 and "start it instead" in refused.json()["error"]
        again = httpx.post(proxy.url + "/-/ollama/stop", headers=proxy.auth, timeout=60)
        assert again.status_code == 200 and again.json()["ollama"]["state"] == "stopped"
        assert ollama_state(proxy)["state"] == "stopped" and ollama_state(proxy)["restarts"] == 0

        assert httpx.post(proxy.url + "/-/ollama/start").status_code == 401
        started = httpx.post(proxy.url + "/-/ollama/start", headers=proxy.auth, timeout=60)
        assert started.status_code == 200 and started.json()["ollama"]["state"] == "starting"
        second = wait_for(running(proxy, not_pid=first["pid"]), "Ollama to run again")
        assert second["restarts"] == 1 and httpx.get(upstream + "/api/version").status_code == 200
        already = httpx.post(proxy.url + "/-/ollama/start", headers=proxy.auth, timeout=60)
        assert already.status_code == 409
        assert already.json() == {
            "error": f"cannot start Ollama: the Ollama started by Ollacache is already running (pid {second['pid']})"
        }
        log = httpx.get(proxy.url + "/-/ollama/log?lines=10000").json()
        assert log["path"] == second["log"]
        assert sum("Listening on" in line for line in log["lines"]) == 2  # both runs, in one log
        assert len(httpx.get(proxy.url + "/-/ollama/log?lines=1").json()["lines"]) == 1


def test_start_and_stop_are_refused_for_an_ollama_that_ollacache_did_not_start(
    upstream: tuple[FakeOllama, str],
) -> None:
    with proxy_process(upstream[1], "--manage-ollama", "auto", env={"OLLACACHE_OLLAMA_BINARY": FAKE_OLLAMA}) as proxy:
        wait_for(lambda: ollama_state(proxy)["state"] == "attached", "attach")
        for verb in ("stop", "start"):
            refused = httpx.post(proxy.url + f"/-/ollama/{verb}", headers=proxy.auth, timeout=60)
            assert refused.status_code == 409
            assert refused.json()["error"] == (
                f"cannot {verb} Ollama: the Ollama at {upstream[1]} was not started by "
                f"Ollacache (it is attached to it); {verb} it yourself"
            )
        assert ollama_state(proxy)["state"] == "attached"
    assert httpx.get(upstream[1] + "/api/version").status_code == 200
