"""Finding the ollama binary on each platform, in the documented order."""

from __future__ import annotations

import pytest

from core.supervision.binary import find_ollama, install_hint


def finder(present: set[str], on_path: str | None = None, platform: str = "linux", **extra: object):  # type: ignore[no-untyped-def]
    return find_ollama(
        extra.pop("configured", None),
        platform=platform,
        home=str(extra.pop("home", "/home/ada")),
        env=extra.pop("env", {}),
        which=lambda name: on_path,
        is_file=lambda p: p in present,
    )


def test_the_setting_comes_first_and_a_wrong_setting_is_not_papered_over() -> None:
    found = finder({"/opt/ollama", "/usr/bin/ollama"}, on_path="/usr/bin/ollama", configured="/opt/ollama")
    assert found is not None and (found.path, found.source) == ("/opt/ollama", "setting")
    assert finder({"/usr/bin/ollama"}, on_path="/usr/bin/ollama", configured="/opt/missing") is None


def test_path_comes_before_the_standard_locations() -> None:
    found = finder({"/usr/local/bin/ollama"}, on_path="/home/ada/bin/ollama")
    assert found is not None and (found.path, found.source) == ("/home/ada/bin/ollama", "PATH")


@pytest.mark.parametrize(
    ("platform", "present", "expected"),
    [
        ("linux", {"/usr/bin/ollama", "/home/ada/.local/bin/ollama"}, "/usr/bin/ollama"),
        ("linux", {"/home/ada/.local/bin/ollama"}, "/home/ada/.local/bin/ollama"),
        (
            "darwin",
            {"/Applications/Ollama.app/Contents/Resources/ollama", "/opt/homebrew/bin/ollama"},
            "/Applications/Ollama.app/Contents/Resources/ollama",
        ),
        ("darwin", {"/opt/homebrew/bin/ollama"}, "/opt/homebrew/bin/ollama"),
        (
            "win32",
            {r"C:\Users\ada\AppData\Local\Programs\Ollama\ollama.exe"},
            r"C:\Users\ada\AppData\Local\Programs\Ollama\ollama.exe",
        ),
    ],
)
def test_standard_install_locations(platform: str, present: set[str], expected: str) -> None:
    found = finder(present, platform=platform, env={"LOCALAPPDATA": r"C:\Users\ada\AppData\Local"})
    assert found is not None and (found.path, found.source) == (expected, "standard location")


def test_nothing_found_comes_with_an_install_hint() -> None:
    assert finder(set()) is None
    assert "install.sh" in install_hint("linux") and "brew install ollama" in install_hint("darwin")
    assert "https://ollama.com/download/windows" in install_hint("win32")
    assert all("`" not in install_hint(platform) for platform in ("linux", "darwin", "win32"))  # plain words
