"""Screenshots of the real app on a real X server: ``python -m tests.screenshots OUTDIR``.

Starts Xvfb with ``trayer`` as the system tray and the app with its engine in throwaway directories, the
engine starting the fake ``ollama`` of the tests (so it runs from a source checkout) with a runner process per
loaded model; sends a few requests through it (misses, then hits), opens the tray menu and saves
``tray-menu.png`` (the tray and its menu) and ``screen.png`` (the whole screen), then the dashboard, one
``dashboard-<tab>.png`` per tab, and the settings window, one ``settings-<tab>.png`` per tab, in OUTDIR; the
Cache tab also during a warm-up (``dashboard-cache-running.png``) and after it (``dashboard-cache.png``);
the General tab with "Share on my network" switched on (not applied), and its API keys… window with a key
just made (``settings-keys.png``). Needs ``xvfb`` and ``trayer`` (see README).
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

SCREEN = (1024, 640)


def _start_x(tmp: Path) -> tuple[subprocess.Popen[bytes], str]:
    read, write = os.pipe()
    xvfb = subprocess.Popen(
        [
            "Xvfb",
            "-displayfd",
            str(write),
            "-screen",
            "0",
            f"{SCREEN[0]}x{SCREEN[1]}x24",
            "-nolisten",
            "tcp",
            "-noreset",
        ],
        pass_fds=(write,),
        stderr=subprocess.DEVNULL,
    )
    os.close(write)
    with os.fdopen(read) as pipe:
        display = ":" + pipe.readline().strip()
    return xvfb, display


async def _shoot(out: Path, upstream: str) -> None:
    import httpx
    from PySide6.QtCore import QPoint, QRect
    from PySide6.QtGui import QGuiApplication

    from core.config.settings import load
    from desktop.app import TrayApp
    from desktop.dashboard_window import build_dashboard
    from desktop.icons import IconState
    from desktop.settings_window import build_settings_window
    from tests.fakes.fake_config import DEFAULT_MODELS

    app = TrayApp(load(), dashboard=build_dashboard, settings_window=build_settings_window)
    app.start()
    while app.tray.state is not IconState.SERVING:
        await asyncio.sleep(0.1)
    async with httpx.AsyncClient(base_url=app.engine.url, timeout=30) as http:
        for _ in range(600):  # the Ollama the engine started; a minute at most
            if await _answers(http, f"{upstream}/api/version"):
                break
            await asyncio.sleep(0.1)
        else:
            raise RuntimeError(f"the fake Ollama the app started does not answer at {upstream}")
        # each runner holds about what a real one would: the model, its context and its prompt cache
        held = {"llama3.2:latest": 2600, "nomic-embed-text:latest": 320}
        models = [{**model, "runner_mib": held.get(model["name"], 0)} for model in DEFAULT_MODELS]
        await http.post(f"{upstream}/_fake/config", json={"models": models})
        await http.post("/api/embed", json={"model": "nomic-embed-text", "input": "a passage to index"})
        for _ in range(4):
            for word in ("hi", "hello", "why is the sky blue?"):
                await http.post(
                    "/api/chat",
                    json={
                        "model": "llama3.2",
                        "stream": False,
                        "options": {"temperature": 0},
                        "messages": [{"role": "user", "content": word}],
                    },
                )
        # an agent asking the same thing five times at once: one call to Ollama, four answers shared
        await http.post(f"{upstream}/_fake/config", json={"first_byte_delay_ms": 500})
        same = {"model": "llama3.2", "stream": False, "messages": [{"role": "user", "content": "plan the trip"}]}
        await asyncio.gather(*(http.post("/api/chat", json=same) for _ in range(5)))
        await http.post(f"{upstream}/_fake/config", json={"first_byte_delay_ms": 0})
    while (app.feed.stats or {}).get("totals", {}).get("requests", 0) < 17:
        await asyncio.sleep(0.1)
    await asyncio.sleep(1.0)  # let trayer draw the icon
    place = app.tray.icon.geometry()
    app.tray.menu.popup(QPoint(place.left(), place.bottom() + 2))
    await asyncio.sleep(1.0)
    screen = QGuiApplication.primaryScreen().grabWindow(0)
    screen.save(str(out / "screen.png"))
    menu = app.tray.menu.geometry()
    area = QRect(place.topLeft(), place.bottomRight()).united(menu).adjusted(-24, -8, 24, 24)
    area = area.intersected(screen.rect())
    screen.copy(area).save(str(out / "tray-menu.png"))
    app.tray.menu.hide()
    window = app.windows.show_dashboard()
    window.resize(1100, 640)  # its default width on a screen 1280 or more wide
    for _ in range(20):  # twenty seconds of stats make the charts' lines
        await asyncio.sleep(1.0)
        async with httpx.AsyncClient(base_url=app.engine.url, timeout=30) as http:
            await http.post(
                "/api/chat",
                json={
                    "model": "llama3.2",
                    "stream": False,
                    "options": {"temperature": 0},
                    "messages": [{"role": "user", "content": "hi"}],
                },
            )
    tabs = window.tabs  # type: ignore[attr-defined]
    for number in range(tabs.count()):
        tabs.setCurrentIndex(number)
        await asyncio.sleep(0.5)
        name = tabs.tabText(number).replace("&", "").lower()
        window.grab().save(str(out / f"dashboard-{name}.png"))
    await _shoot_warmup(window, out, upstream)
    window.close()
    settings = app.windows.show_settings()
    settings.resize(760, 640)
    while not getattr(settings, "fields", None):
        await asyncio.sleep(0.1)
    tabs = settings.tabs  # type: ignore[attr-defined]
    settings.fields["proxy.share"].editor.setChecked(True)  # type: ignore[attr-defined]
    for number in range(tabs.count()):
        tabs.setCurrentIndex(number)
        await asyncio.sleep(1.0)  # a tab may read more from the engine when shown
        panel = settings.performance  # type: ignore[attr-defined]
        if panel.isVisible() and not panel.chart.bars:  # a measurement, for the chart
            panel.runs.setValue(1)
            panel.tune_button.click()
            for _ in range(120):
                if panel.apply_winner_button.isEnabled():
                    break
                await asyncio.sleep(0.5)
            settings.resize(760, 1060)  # the whole tab, chart included (grab() draws beyond the screen)
            await asyncio.sleep(0.5)
        title = tabs.tabText(number).replace("&", "").lower()
        name = "expert" if "expert" in title else title.split(" ")[0]
        settings.grab().save(str(out / f"settings-{name}.png"))
    keys = settings.show_keys()  # type: ignore[attr-defined]
    while not keys.loaded:
        await asyncio.sleep(0.1)
    keys.add("alice-laptop")
    while not keys.new_key.text():
        await asyncio.sleep(0.1)
    await asyncio.sleep(0.5)
    keys.grab().save(str(out / "settings-keys.png"))
    keys.close()
    settings.fields["proxy.share"].editor.setChecked(False)  # type: ignore[attr-defined]
    done = asyncio.Event()
    app.finished.connect(done.set)
    app.quit()
    await done.wait()


async def _answers(http: Any, url: str) -> bool:
    try:
        return (await http.get(url)).status_code == 200
    except Exception:  # noqa: BLE001 - not listening yet
        return False


async def _shoot_warmup(window: Any, out: Path, upstream: str) -> None:
    """The Cache tab during a warm-up (``dashboard-cache-running.png``) and after it (``dashboard-cache.png``):
    a dozen requests answered slowly by the fake, one for a model it does not have."""
    import httpx

    tab = window.cache
    window.tabs.setCurrentWidget(tab)
    lines = [
        {
            "endpoint": "/api/chat",
            "body": {
                "model": "llama3.2",
                "messages": [{"role": "user", "content": f"Summarise chapter {n} of the manual."}],
            },
        }
        for n in range(1, 9)
    ]
    lines += [
        {"endpoint": "/api/embed", "body": {"model": "nomic-embed-text", "input": f"passage {n}"}} for n in range(1, 4)
    ]
    lines.insert(5, {"endpoint": "/api/generate", "body": {"model": "gemma3:270m", "prompt": "hello"}})
    file = Path(tempfile.mkdtemp()) / "demo-prompts.jsonl"
    file.write_text("".join(json.dumps(line) + "\n" for line in lines))
    async with httpx.AsyncClient(timeout=30) as http:
        await http.post(f"{upstream}/_fake/config", json={"chunk_delay_ms": 60})
        try:
            tab.warm_from(file)
            while not (tab.running and tab.progress.value() >= 4):
                await asyncio.sleep(0.05)
            window.grab().save(str(out / "dashboard-cache-running.png"))
            while tab.running:
                await asyncio.sleep(0.1)
            await asyncio.sleep(1.5)  # the next stats give the entry count
            window.grab().save(str(out / "dashboard-cache.png"))
        finally:
            file.unlink()
            file.parent.rmdir()
            await http.post(f"{upstream}/_fake/config", json={"chunk_delay_ms": 0})


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: python -m tests.screenshots OUTDIR", file=sys.stderr)
        return 2
    out = Path(argv[0])
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as scratch:
        tmp = Path(scratch)
        from tests.harness import free_port
        from tests.test_supervisor_process import FAKE_OLLAMA, FAKE_PYTHON

        xvfb, display = _start_x(tmp)
        ollama_port = free_port()
        proxy_port = next(port for port in iter(free_port, None) if port != ollama_port)
        upstream = f"http://127.0.0.1:{ollama_port}"
        # in the settings file, not the environment, so the settings window shows them as a user's own
        (tmp / "config").mkdir()
        (tmp / "config" / "config.toml").write_text(
            f'[proxy]\nport = {proxy_port}\nupstream = "{upstream}"\n[ollama]\nbinary = "{FAKE_OLLAMA}"\n'
        )
        for name in ("QT_QPA_PLATFORM", "OLLACACHE_PORT", "OLLACACHE_UPSTREAM", "OLLACACHE_MANAGE_OLLAMA"):
            os.environ.pop(name, None)  # the settings file above decides
        os.environ.pop("WAYLAND_DISPLAY", None)
        os.environ.update(
            {
                "DISPLAY": display,
                "OLLACACHE_CONFIG_DIR": str(tmp / "config"),
                "OLLACACHE_CACHE_DIR": str(tmp / "cache"),
                "OLLACACHE_LOG_DIR": str(tmp / "logs"),
                "FAKE_OLLAMA_RUNNERS": "1",
                **FAKE_PYTHON,
            }
        )
        tray = subprocess.Popen(
            [
                "trayer",
                "--edge",
                "top",
                "--align",
                "right",
                "--widthtype",
                "request",
                "--height",
                "28",
                "--SetDockType",
                "true",
                "--transparent",
                "false",
                "--tint",
                "0x2b2b2b",
            ],
            stderr=subprocess.DEVNULL,
        )
        try:
            import qasync
            from PySide6.QtWidgets import QApplication, QSystemTrayIcon

            qt = QApplication([sys.argv[0]])
            qt.setQuitOnLastWindowClosed(False)
            loop = qasync.QEventLoop(qt)
            asyncio.set_event_loop(loop)
            while not QSystemTrayIcon.isSystemTrayAvailable():
                qt.processEvents()
            with loop:
                loop.run_until_complete(_shoot(out, upstream))
        finally:
            tray.terminate()
            xvfb.terminate()
            tray.wait()
            xvfb.wait()
    print(f"saved {out / 'tray-menu.png'} and {out / 'screen.png'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
