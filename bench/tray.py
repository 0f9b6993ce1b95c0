"""The tray app's costs: time to the icon, memory after traffic, idle CPU, hits with the dashboard open (targets:
<= 2 s, <= 150 MB, <= 1 %, <= 1.1x).

Launches the real app (``python -m desktop``) with fresh config, cache and log directories, in front of the
fake Ollama of the tests, under Xvfb with ``trayer`` as the system tray when both are installed (otherwise
offscreen, where there is no tray and the app opens its dashboard instead: the figures then include the
open dashboard, and the script says so). It prints:

- launch to icon shown: from starting the app to the moment it showed its tray icon, as the app writes it
  in ``desktop.log`` (``timing: tray icon shown ... (at UNIX_TIME)``);
- launch to serving: from starting the app to the engine's ``running.json`` naming a URL whose ``/-/health``
  answers (the app shows its icon first, then starts the engine);
- live numbers: when the app had its first stats to show (``timing: live numbers shown``), from launch and from
  the engine answering (targets: within 1 s of the engine answering, and within 1.5 s of launch where an engine
  already runs, which the second launch below measures);
- the app's RSS (and the engine's, beside it) after ``--minutes`` of cache hits sent through the proxy by one
  client as fast as it goes (each hit a finished-request event the app receives on its feed);
- the CPU time of the app and the engine together over ``--idle`` seconds with no traffic, as a percent of
  one core (the dashboard hidden: the app is launched with ``--hidden``, as at login with "Start hidden");
- the CPU of the app and of the engine while hits come at ``--rate`` a second for ``--load-seconds`` (one
  keep-alive connection, paced), with the dashboard closed, then open (targets: the app at most 10 % and 25 % of
  one core); the achieved rate is printed beside;
- the median hit latency of ``--p50-hits`` hits with the dashboard closed, then of as many once a second
  launch of the app has brought the first one's dashboard forward (the dashboard's live charts and table
  then redraw on every event), and their ratio. Offscreen the dashboard is open for both, so the ratio
  says nothing there.

``--app PATH`` measures a frozen build instead (``packaging/build.py``'s ``ollacache``, launched with no
arguments as the menu entry does); ``--screenshot FILE`` saves the whole screen (ImageMagick's ``import``) once
the dashboard has been brought forward and has drawn the hits, and ``FILE-tray.png`` before, the tray alone.

Never fails on numbers.

    .venv/bin/python bench/tray.py [--minutes 10] [--idle 60] [--p50-hits 3000] [--app dist/ollacache/ollacache]
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import (  # noqa: E402 - bench scripts run as plain files
    CHAT_BODY,
    PYTHON,
    REPO,
    Stack,
    busy_note,
    machine_busy,
    post,
    revision,
)
from hit_latency import Client  # noqa: E402

ICON_TARGET_S = 2.0
LIVE_AFTER_ENGINE_S = 1.0
LOAD_TARGETS_PERCENT = {"closed": 10.0, "open": 25.0}
RSS_TARGET_MB = 150.0
IDLE_TARGET_PERCENT = 1.0
DASHBOARD_TARGET_RATIO = 1.1
SHOWN_RE = re.compile(r"timing: (?P<what>.+) shown .* \(at (?P<at>[0-9.]+)\)")


def _display(stack: Stack) -> tuple[dict[str, str], str]:
    """The environment for the app: an Xvfb display with trayer as its tray, or offscreen."""
    if not (shutil.which("Xvfb") and shutil.which("trayer")):
        return {"QT_QPA_PLATFORM": "offscreen"}, "offscreen (no tray: the dashboard is open)"
    read, write = os.pipe()
    xvfb = subprocess.Popen(
        ["Xvfb", "-displayfd", str(write), "-screen", "0", "1024x640x24", "-nolisten", "tcp", "-noreset"],
        pass_fds=(write,),
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    os.close(write)
    with os.fdopen(read) as pipe:
        display = ":" + pipe.readline().strip()
    stack.procs.append((xvfb, 15))
    tray = subprocess.Popen(
        ["trayer", "--edge", "top", "--SetDockType", "true"],
        env={**os.environ, "DISPLAY": display},
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    stack.procs.insert(1, (tray, 15))  # stopped before Xvfb (close() goes in reverse)
    return {"DISPLAY": display}, f"Xvfb {display} with trayer as the tray (dashboard hidden)"


def _serving(config: Path) -> tuple[str, int] | None:
    """The engine's URL and pid once running.json names one that answers /-/health."""
    try:
        running = json.loads((config / "running.json").read_text())
        parts = urlsplit(running["url"])
        conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=1)
        conn.request("GET", "/-/health")
        status = conn.getresponse().status
        conn.close()
    except (OSError, ValueError, KeyError):
        return None
    return (running["url"], int(running["pid"])) if status == 200 else None


def _shown(logs: Path, what: str) -> float | None:
    """When the app last wrote that it showed ``what`` (``tray icon``, ``dashboard``), in Unix time."""
    try:
        text = (logs / "desktop.log").read_text()
    except OSError:
        return None
    times = [float(m["at"]) for m in SHOWN_RE.finditer(text) if m["what"] == what]
    return times[-1] if times else None


def _wait_shown(logs: Path, what: str, app: subprocess.Popen[bytes], stack: Stack, after: float = 0.0) -> float:
    while (at := _shown(logs, what)) is None or at < after:
        if app.poll() is not None:
            raise RuntimeError(f"the app exited: {(stack.dir / 'app.err').read_text()[-2000:]}")
        time.sleep(0.01)
    return at


def _screenshot(display: str, path: Path) -> None:
    subprocess.run(["import", "-display", display, "-window", "root", str(path)], check=True)


def _hit_p50(url: str, hits: int, app: psutil.Process) -> tuple[float, float]:
    """The median latency in ms of ``hits`` cache hits, one connection each, as the bench's other loops, and
    the app's CPU meanwhile (percent of one core: what it spends on the events those hits send it)."""
    cpu, begun_all = sum(app.cpu_times()[:2]), time.perf_counter()
    took = []
    for _ in range(hits):
        begun = time.perf_counter()
        status, headers, _ = post(url, "/api/chat", CHAT_BODY)
        took.append(time.perf_counter() - begun)
        if status != 200 or headers.get("x-cache") != "HIT":
            raise RuntimeError(f"expected a HIT, got {status} {headers.get('x-cache')}")
    app_cpu = (sum(app.cpu_times()[:2]) - cpu) / (time.perf_counter() - begun_all) * 100
    return statistics.median(took) * 1000, app_cpu


def _paced_hits(url: str, rate: float, seconds: float, procs: list[psutil.Process]) -> tuple[float, list[float]]:
    """Hits at ``rate`` a second for ``seconds`` on one keep-alive connection: the rate achieved, and each of
    ``procs``' CPU meanwhile (percent of one core)."""
    client = Client(url, "/api/chat", CHAT_BODY)
    before = [sum(p.cpu_times()[:2]) for p in procs]
    sent, begun = 0, time.perf_counter()
    try:
        while (elapsed := time.perf_counter() - begun) < seconds:
            if sent > elapsed * rate:  # ahead of the pace: wait for the next slot
                time.sleep(sent / rate - elapsed)
                continue
            client.once()
            sent += 1
    finally:
        client.close()
    took = time.perf_counter() - begun
    return sent / took, [(sum(p.cpu_times()[:2]) - b) / took * 100 for p, b in zip(procs, before, strict=True)]


def _live_with_an_engine_running(
    command: list[str], env: dict[str, str], config: Path, logs: Path, stack: Stack
) -> float:
    """Seconds from launching the app to its first live numbers where an engine already runs (``ollacache
    serve`` started first: the app attaches to it); both are stopped afterwards."""
    engine = subprocess.Popen(
        [PYTHON, "-m", "core", "serve"],
        cwd=REPO,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=stack._log("engine-first"),
        start_new_session=True,
    )
    stack.procs.append((engine, 15))
    while _serving(config) is None:
        if engine.poll() is not None:
            raise RuntimeError("the engine started first exited")
        time.sleep(0.01)
    launched = time.time()
    app = subprocess.Popen(
        [*command, "--hidden"],
        cwd=REPO,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=stack._log("app-attached"),
        start_new_session=True,
    )
    stack.procs.append((app, 15))
    took = _wait_shown(logs, "live numbers", app, stack, after=launched) - launched
    for process in (app, engine):  # the app leaves an engine it attached to running: stop both
        process.terminate()
        process.wait(timeout=30)
    return took


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=10.0, help="minutes of hits before RSS is read")
    parser.add_argument("--idle", type=float, default=60.0, help="seconds of idle CPU measured")
    parser.add_argument("--p50-hits", type=int, default=3000, help="hits timed with the dashboard closed, then open")
    parser.add_argument("--app", type=Path, help="a frozen build's executable to launch instead of python -m desktop")
    parser.add_argument("--screenshot", type=Path, help="save the screen here with the dashboard open")
    parser.add_argument("--rate", type=float, default=1000.0, help="hits a second for the CPU under load")
    parser.add_argument("--load-seconds", type=float, default=20.0, help="seconds of paced hits, closed and open")
    args = parser.parse_args()
    command = [str(args.app.resolve())] if args.app else [PYTHON, "-m", "desktop"]
    busy, measured = machine_busy(), revision()
    with Stack() as stack:
        fake = stack.start_fake(cpu=None)
        display, where = _display(stack)
        config, logs = stack.dir / "config", stack.dir / "logs"
        env = {
            **os.environ,
            **display,
            "OLLACACHE_CONFIG_DIR": str(config),
            "OLLACACHE_CACHE_DIR": str(stack.dir / "cache"),
            "OLLACACHE_LOG_DIR": str(logs),
            "OLLACACHE_PORT": "0",
            "OLLACACHE_UPSTREAM": fake,
            "OLLACACHE_MANAGE_OLLAMA": "never",
        }
        if "DISPLAY" in display:
            env.pop("QT_QPA_PLATFORM", None)
            env.pop("WAYLAND_DISPLAY", None)
        live_attached = _live_with_an_engine_running(command, env, config, logs, stack)
        started_at, started = time.time(), time.perf_counter()
        app = subprocess.Popen(
            [*command, "--hidden"],
            cwd=REPO,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=stack._log("app"),
            start_new_session=True,
        )
        stack.procs.append((app, 15))
        while (found := _serving(config)) is None:
            if app.poll() is not None:
                raise RuntimeError(f"the app exited: {(stack.dir / 'app.err').read_text()[-2000:]}")
            time.sleep(0.01)
        launch = time.perf_counter() - started
        serving_at = started_at + launch
        icon = _wait_shown(logs, "tray icon", app, stack, after=started_at) - started_at
        live = _wait_shown(logs, "live numbers", app, stack, after=started_at)
        url, engine_pid = found
        stack.proxy_url = url
        stack.prime("/api/chat", CHAT_BODY)
        hits, deadline = 0, time.monotonic() + args.minutes * 60
        while time.monotonic() < deadline:
            status, headers, _ = post(url, "/api/chat", CHAT_BODY)
            hits += status == 200 and headers.get("x-cache") == "HIT"
        app_proc, engine = psutil.Process(app.pid), psutil.Process(engine_pid)
        rss, engine_rss = app_proc.memory_info().rss / 1e6, engine.memory_info().rss / 1e6
        time.sleep(2.0)  # let the last events drain before idle is measured
        before = [sum(p.cpu_times()[:2]) for p in (app_proc, engine)]
        time.sleep(args.idle)
        app_idle, engine_idle = (
            (sum(p.cpu_times()[:2]) - b) / args.idle * 100 for p, b in zip((app_proc, engine), before, strict=True)
        )
        idle = app_idle + engine_idle
        load_closed = _paced_hits(url, args.rate, args.load_seconds, [app_proc, engine])
        closed, closed_cpu = _hit_p50(url, args.p50_hits, app_proc)
        if args.screenshot and "DISPLAY" in display:  # the tray alone, its icon serving
            _screenshot(display["DISPLAY"], args.screenshot.with_name(f"{args.screenshot.stem}-tray.png"))
        asked = time.time()
        second = subprocess.run(
            command, cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=60, check=False
        )
        _wait_shown(logs, "dashboard", app, stack, after=asked)
        time.sleep(1.0)  # the first frames of the window and its charts
        load_open = _paced_hits(url, args.rate, args.load_seconds, [app_proc, engine])
        opened, opened_cpu = _hit_p50(url, args.p50_hits, app_proc)
        if args.screenshot and "DISPLAY" in display:
            time.sleep(1.5)  # the charts' next redraw shows the last hits
            _screenshot(display["DISPLAY"], args.screenshot)
    print(f"tray app ({args.app or 'python -m desktop'}) at {measured}, {where}; {busy_note(busy)}")
    print(
        f"  launch to icon shown (the app's desktop.log): {icon:5.2f} s"
        f"   target <= {ICON_TARGET_S:.0f} s: {'meets' if icon <= ICON_TARGET_S else 'MISSES'}"
    )
    print(f"  launch to serving (running.json answering /-/health): {launch:5.2f} s")
    after_engine = live - serving_at
    print(
        f"  live numbers: {live - started_at:5.2f} s after launch, {after_engine:+.2f} s after the engine answered"
        f"   target <= {LIVE_AFTER_ENGINE_S:g} s: {'meets' if after_engine <= LIVE_AFTER_ENGINE_S else 'MISSES'}"
    )
    print(
        f"  live numbers when an engine already runs: {live_attached:5.2f} s after launch   target <= 1.5 s:"
        f" {'meets' if live_attached <= 1.5 else 'MISSES'}"
    )
    for shown, (rate, (app_cpu, engine_cpu)) in (("closed", load_closed), ("open", load_open)):
        target = LOAD_TARGETS_PERCENT[shown]
        print(
            f"  under {rate:,.0f} hits/s (asked {args.rate:,.0f}), dashboard {shown}: app {app_cpu:4.1f} % of a core,"
            f" engine {engine_cpu:4.1f} %   target app <= {target:.0f} %: {'meets' if app_cpu <= target else 'MISSES'}"
        )
    print(
        f"  app RSS after {args.minutes:g} min of hits ({hits:,} hits): {rss:6.1f} MB (engine {engine_rss:.1f} MB)"
        f"   target <= {RSS_TARGET_MB:.0f} MB: {'meets' if rss <= RSS_TARGET_MB else 'MISSES'}"
    )
    print(
        f"  idle CPU of app + engine over {args.idle:g} s: {idle:5.2f} % of one core (app {app_idle:.2f} %,"
        f" engine {engine_idle:.2f} %)   target <= {IDLE_TARGET_PERCENT:.0f} %:"
        f" {'meets' if idle <= IDLE_TARGET_PERCENT else 'MISSES'}"
    )
    ratio = opened / closed
    print(
        f"  hit p50 over {args.p50_hits:,} hits: dashboard closed {closed:.2f} ms, open {opened:.2f} ms"
        f" (app CPU {closed_cpu:.0f} % / {opened_cpu:.0f} % of a core; second launch exited {second.returncode}):"
        f" {ratio:.2f}x   target <= {DASHBOARD_TARGET_RATIO:g}x:"
        f" {'meets' if ratio <= DASHBOARD_TARGET_RATIO else 'MISSES'}"
    )


if __name__ == "__main__":
    main()
