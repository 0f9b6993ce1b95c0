"""Start at login: the contents each platform reads (on every OS), and the Linux entry for real."""

from __future__ import annotations

import json
import os
import plistlib
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from desktop import autostart
from desktop.autostart import (
    HIDDEN_FLAG,
    AutostartError,
    LaunchAgent,
    XdgEntry,
    desktop_entry,
    exec_value,
    launch_agent,
    launch_command,
    read_desktop_entry,
    run_value,
    split_exec,
    split_run_value,
    xdg_autostart_path,
)

ARGVS = [
    ["/usr/bin/python3", "-m", "desktop"],
    ["/opt/My Apps/ollacache", HIDDEN_FLAG],
    ['/home/a$b/"q"/back\\slash/100%/ollacache', ""],
    ["/tmp/semi;colon/it's (here)/x~y", "--flag=1"],
    [r"C:\Program Files\Ollacache\Ollacache.exe", HIDDEN_FLAG],
    [r"C:\Users\Some One\app.exe", 'say "hi"', "trailing\\", r"a\\b"],
]


@pytest.fixture
def xdg_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A HOME and XDG_CONFIG_HOME of the test's own, so the user's real autostart folder is never touched."""
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    monkeypatch.setattr(sys, "platform", "linux")
    return tmp_path / "config"


def test_the_command_is_the_frozen_executable_or_python_dash_m_desktop() -> None:
    assert launch_command(False, frozen=True, executable="/Apps/Ollacache") == ["/Apps/Ollacache"]
    assert launch_command(True, frozen=True, executable="/Apps/Ollacache") == ["/Apps/Ollacache", HIDDEN_FLAG]
    assert launch_command(False, frozen=False, executable="/venv/bin/python") == ["/venv/bin/python", "-m", "desktop"]
    assert launch_command(True)[:-1] == [sys.executable, "-m", "desktop"]  # this test run is not frozen


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["/usr/bin/python3", "-m", "desktop"], "/usr/bin/python3 -m desktop"),
        (["/opt/My Apps/ollacache", "--hidden"], '"/opt/My Apps/ollacache" --hidden'),
        # inside quotes " ` $ \ take a backslash; then the string escape doubles every backslash
        (['/a$b/"q"', "x"], r'"/a\\$b/\\"q\\"" x'),
        (["/a b/100%", ""], '"/a b/100%%" ""'),  # % is doubled so it is not read as a field code
        (["/usr/bin/x", "50%"], "/usr/bin/x 50%%"),
    ],
)
def test_exec_values_follow_the_desktop_entry_quoting_rules(argv: list[str], expected: str) -> None:
    assert exec_value(argv) == expected


@pytest.mark.parametrize("argv", ARGVS)
def test_each_format_reads_back_the_command_it_was_written_with(argv: list[str]) -> None:
    assert split_exec(exec_value(argv)) == argv
    assert split_run_value(run_value(argv)) == argv
    assert plistlib.loads(launch_agent(argv))["ProgramArguments"] == argv


def test_a_program_path_with_an_equals_sign_cannot_be_an_exec_key() -> None:
    with pytest.raises(AutostartError, match="may not contain '='"):
        exec_value(["/opt/a=b/ollacache"])


def test_the_desktop_entry_has_the_keys_a_session_needs() -> None:
    command = ["/opt/My Apps/ollacache", HIDDEN_FLAG]
    keys = read_desktop_entry(desktop_entry(command))
    assert keys["Type"] == "Application"
    assert keys["Name"] == "Ollacache"
    assert keys["Terminal"] == "false"
    assert keys["X-GNOME-Autostart-enabled"] == "true"
    assert keys["TryExec"] == "/opt/My Apps/ollacache"  # an uninstalled app's entry is skipped
    assert "Hidden" not in keys
    assert split_exec(keys["Exec"]) == command


@pytest.mark.skipif(shutil.which("desktop-file-validate") is None, reason="desktop-file-utils is not installed")
@pytest.mark.parametrize("argv", ARGVS[:4])
def test_desktop_file_validate_accepts_the_entry(tmp_path: Path, argv: list[str]) -> None:
    path = tmp_path / "ollacache.desktop"
    path.write_text(desktop_entry(argv), encoding="utf-8")
    result = subprocess.run(["desktop-file-validate", str(path)], capture_output=True, text=True, check=False)
    assert result.returncode == 0 and not result.stdout.strip(), result.stdout


def test_the_launch_agent_runs_once_at_login_in_the_graphical_session() -> None:
    agent = plistlib.loads(launch_agent(["/Applications/Ollacache.app/Contents/MacOS/Ollacache", HIDDEN_FLAG]))
    assert agent["Label"] == "org.ollacache.tray"
    assert agent["ProgramArguments"] == ["/Applications/Ollacache.app/Contents/MacOS/Ollacache", HIDDEN_FLAG]
    assert agent["RunAtLoad"] is True
    assert "KeepAlive" not in agent  # Quit stays quit
    assert agent["LimitLoadToSessionType"] == "Aqua"


def test_the_run_value_quotes_a_path_with_spaces() -> None:
    assert (
        run_value([r"C:\Program Files\Ollacache\Ollacache.exe", HIDDEN_FLAG])
        == r'"C:\Program Files\Ollacache\Ollacache.exe" --hidden'
    )


def test_the_autostart_folder_follows_xdg_config_home() -> None:
    assert xdg_autostart_path({"XDG_CONFIG_HOME": "/x/conf", "HOME": "/home/u"}) == Path(
        "/x/conf/autostart/ollacache.desktop"
    )
    assert xdg_autostart_path({"HOME": "/home/u"}) == Path("/home/u/.config/autostart/ollacache.desktop")
    # a relative or empty value is ignored, as the base directory specification says
    assert xdg_autostart_path({"XDG_CONFIG_HOME": "conf", "HOME": "/home/u"}) == Path(
        "/home/u/.config/autostart/ollacache.desktop"
    )
    assert xdg_autostart_path({"XDG_CONFIG_HOME": "", "HOME": "/home/u"}) == Path(
        "/home/u/.config/autostart/ollacache.desktop"
    )


def test_start_at_login_is_off_until_turned_on(xdg_home: Path) -> None:
    assert not autostart.is_enabled()
    assert not autostart.starts_hidden()
    assert not (xdg_home / "autostart").exists()


def test_the_linux_entry_is_written_read_back_and_removed(xdg_home: Path) -> None:
    path = xdg_home / "autostart" / "ollacache.desktop"

    autostart.enable(hidden=False)
    assert autostart.is_enabled() and not autostart.starts_hidden()
    keys = read_desktop_entry(path.read_text(encoding="utf-8"))
    assert split_exec(keys["Exec"]) == launch_command(False)
    if os.name == "posix":
        assert stat.S_IMODE(path.stat().st_mode) == 0o600

    autostart.enable(hidden=True)  # replaces the entry
    assert autostart.is_enabled() and autostart.starts_hidden()
    assert split_exec(read_desktop_entry(path.read_text(encoding="utf-8"))["Exec"]) == launch_command(True)
    assert [p.name for p in path.parent.iterdir()] == ["ollacache.desktop"]  # no temporary file left

    autostart.disable()
    assert not path.exists()
    assert not autostart.is_enabled() and not autostart.starts_hidden()
    autostart.disable()  # already off: nothing to do


# Run with the system's Python, which has GLib's bindings where GNOME is installed: GLib reads the entry
# as GNOME's session does (TryExec, string escapes, Exec quoting, field codes) and starts its command.
_GLIB_LAUNCH = """
import os, sys
try:
    import gi
    gi.require_version("Gio", "2.0")
    from gi.repository import Gio, GLib
except (ImportError, ValueError):
    sys.exit(77)
app = Gio.DesktopAppInfo.new_from_filename(sys.argv[1])
if app is None:
    sys.exit("GLib refused the entry")
pids = []
app.launch_uris_as_manager([], None, GLib.SpawnFlags.SEARCH_PATH | GLib.SpawnFlags.DO_NOT_REAP_CHILD,
                           None, None, lambda _app, pid, _data: pids.append(pid), None)
_, status = os.waitpid(pids[0], 0)
sys.exit(os.waitstatus_to_exitcode(status))
"""

RECORDER = "import json, pathlib, sys\npathlib.Path(sys.argv[1]).write_text(json.dumps(sys.argv[1:]))\n"


SYSTEM_PYTHON = shutil.which("python3", path=os.defpath)  # the system's, not this virtual environment's


@pytest.mark.skipif(SYSTEM_PYTHON is None, reason="no system python3 to run GLib with")
def test_glib_starts_the_entry_with_the_arguments_it_was_given(xdg_home: Path, tmp_path: Path) -> None:
    folder = tmp_path / "My $HOME's 100% (tools)"
    folder.mkdir()
    recorder = folder / "record.py"
    recorder.write_text(RECORDER)
    out = folder / 'argv "seen".json'
    autostart.enable(hidden=True, base=[sys.executable, str(recorder), str(out)])

    entry = xdg_home / "autostart" / "ollacache.desktop"
    launched = subprocess.run(
        [SYSTEM_PYTHON or "python3", "-c", _GLIB_LAUNCH, str(entry)], capture_output=True, text=True, check=False
    )
    if launched.returncode == 77:
        pytest.skip("the system python3 has no GLib bindings (python3-gi)")
    assert launched.returncode == 0, launched.stderr
    assert json.loads(out.read_text()) == [str(out), HIDDEN_FLAG]


def test_without_xdg_config_home_the_entry_goes_under_home(xdg_home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("XDG_CONFIG_HOME")
    autostart.enable(hidden=True, base=["/opt/My Apps/ollacache"])
    path = Path(os.environ["HOME"]) / ".config" / "autostart" / "ollacache.desktop"
    assert split_exec(read_desktop_entry(path.read_text(encoding="utf-8"))["Exec"]) == [
        "/opt/My Apps/ollacache",
        HIDDEN_FLAG,
    ]
    assert autostart.starts_hidden()
    autostart.disable()
    assert not path.exists()


@pytest.mark.parametrize("switch_off", ["X-GNOME-Autostart-enabled=false", "Hidden=true"])
def test_an_entry_the_desktop_switched_off_reads_as_off(xdg_home: Path, switch_off: str) -> None:
    autostart.enable(hidden=True)
    path = xdg_home / "autostart" / "ollacache.desktop"
    text = path.read_text(encoding="utf-8").replace("X-GNOME-Autostart-enabled=true\n", "")
    path.write_text(text + switch_off + "\n", encoding="utf-8")  # as GNOME's Startup Applications does
    assert not autostart.is_enabled() and not autostart.starts_hidden()
    autostart.enable(hidden=False)  # turning it on again writes a fresh entry
    assert autostart.is_enabled()


def test_a_failure_to_write_is_one_sentence(xdg_home: Path) -> None:
    xdg_home.parent.mkdir(parents=True, exist_ok=True)
    xdg_home.write_text("a file where the config folder should be")
    with pytest.raises(AutostartError, match="could not turn on start at login: .*"):
        autostart.enable(hidden=False)
    assert not autostart.is_enabled()


def test_the_launch_agent_file_is_written_read_back_and_removed(tmp_path: Path) -> None:
    agent = LaunchAgent(tmp_path / "Library" / "LaunchAgents" / "org.ollacache.tray.plist")
    assert agent.read() is None
    agent.write(["/Applications/Ollacache.app/Contents/MacOS/Ollacache", HIDDEN_FLAG])
    assert agent.read() == ["/Applications/Ollacache.app/Contents/MacOS/Ollacache", HIDDEN_FLAG]
    if os.name == "posix":
        assert stat.S_IMODE(agent.path.stat().st_mode) == 0o600  # launchd refuses only others' write access
    agent.remove()
    assert agent.read() is None and not agent.path.exists()


def test_a_launch_agent_disabled_by_hand_reads_as_off(tmp_path: Path) -> None:
    agent = LaunchAgent(tmp_path / "org.ollacache.tray.plist")
    agent.write(["/Applications/Ollacache.app/Contents/MacOS/Ollacache"])
    document = plistlib.loads(agent.path.read_bytes())
    agent.path.write_bytes(plistlib.dumps({**document, "Disabled": True}))
    assert agent.read() is None


def test_the_linux_entry_class_is_the_one_used_off_windows_and_macos(xdg_home: Path) -> None:
    chosen = autostart.backend("linux")
    assert isinstance(chosen, XdgEntry) and chosen.path == xdg_home / "autostart" / "ollacache.desktop"
    assert isinstance(autostart.backend("darwin"), LaunchAgent)
    assert isinstance(autostart.backend("win32"), autostart.RunKey)


@pytest.mark.skipif(sys.platform != "win32", reason="the registry exists on Windows only")
def test_the_run_value_is_written_read_back_and_removed_in_the_registry() -> None:
    key = autostart.RunKey(name=f"OllacacheTest{os.getpid()}")
    try:
        key.write([r"C:\Program Files\Ollacache\Ollacache.exe", HIDDEN_FLAG])
        assert key.read() == [r"C:\Program Files\Ollacache\Ollacache.exe", HIDDEN_FLAG]
    finally:
        key.remove()
    assert key.read() is None
