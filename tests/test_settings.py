"""Settings: defaults, then config.toml, then OLLACACHE_* variables, then flags; bad values are named."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from core.config.file import write_settings
from core.config.parsing import parse_bytes, parse_seconds
from core.config.settings import SECTIONS, SPECS, SettingError, Source, load, reread
from core.config.specs_ollama_server import SERVER_VARIABLES, server_environment
from core.config.table import human_bytes, human_seconds
from core.tuning.in_force import ollama_env
from core.tuning.recommend import recommend
from tests.data.hw.machines import VM, linux


def write_config(tmp_path: Path, text: str) -> None:
    (tmp_path / "config").mkdir(exist_ok=True)
    (tmp_path / "config" / "config.toml").write_text(text)


def test_defaults_match_the_spec(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OLLACACHE_CACHE_DIR")
    monkeypatch.delenv("OLLACACHE_MANAGE_OLLAMA")
    settings = load()
    assert settings["proxy.host"] == "127.0.0.1" and settings["proxy.port"] == 11435
    assert settings["proxy.upstream"] == "http://127.0.0.1:11434"
    assert settings["cache.size_limit"] == 2 * 2**30 and settings["cache.ttl"] == 30 * 86400
    assert settings["ollama.manage"] == "auto"
    assert settings.cache_dir.name == "ollacache"


def test_file_then_environment_then_flags_win(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write_config(tmp_path, '[proxy]\nport = 12000\nupstream = "http://10.0.0.5:11434"\n[cache]\nttl = "12h"\n')
    settings = load()
    assert (settings["proxy.port"], settings["proxy.upstream"], settings["cache.ttl"]) == (
        12000,
        "http://10.0.0.5:11434",
        43200,
    )
    monkeypatch.setenv("OLLACACHE_PORT", "13000")
    assert load()["proxy.port"] == 13000
    assert load({"proxy.port": "14000"})["proxy.port"] == 14000
    assert load({"proxy.port": None})["proxy.port"] == 13000


def test_every_flag_has_an_environment_variable_named_after_it() -> None:
    for spec in SPECS:
        if spec.flag:
            assert spec.env == "OLLACACHE_" + spec.flag.strip("-").replace("-", "_").upper()


@pytest.mark.parametrize(
    ("text", "expected"), [("2GiB", 2**31), ("500MB", 500 * 10**6), ("1048576", 2**20), (4096, 4096), ("1.5 KiB", 1536)]
)
def test_sizes_take_units(text: object, expected: int) -> None:
    assert parse_bytes(text) == expected


@pytest.mark.parametrize(("text", "expected"), [("30d", 2592000), ("12h", 43200), ("90s", 90), (0, 0), ("5m", 300)])
def test_durations_take_units(text: object, expected: int) -> None:
    assert parse_seconds(text) == expected


@pytest.mark.parametrize(
    ("env", "value", "name"),
    [
        ("OLLACACHE_PORT", "70000", "proxy.port"),
        ("OLLACACHE_PORT", "http", "proxy.port"),
        ("OLLACACHE_UPSTREAM", "localhost:11434", "proxy.upstream"),
        ("OLLACACHE_CACHE_SIZE", "-1", "cache.size_limit"),
        ("OLLACACHE_TTL", "forever", "cache.ttl"),
        ("OLLACACHE_MANAGE_OLLAMA", "sometimes", "ollama.manage"),
    ],
)
def test_an_invalid_value_names_the_setting_its_source_and_what_is_accepted(
    monkeypatch: pytest.MonkeyPatch, env: str, value: str, name: str
) -> None:
    monkeypatch.setenv(env, value)
    with pytest.raises(SettingError) as caught:
        load()
    assert caught.value.name == name
    assert name in str(caught.value) and env in str(caught.value) and "accepted:" in str(caught.value)


def test_unknown_names_and_broken_toml_in_the_file_are_refused(tmp_path: Path) -> None:
    write_config(tmp_path, "[proxy]\nprot = 1\n")
    with pytest.raises(SettingError, match="proxy.prot"):
        load()
    write_config(tmp_path, "[proxy\n")
    with pytest.raises(SettingError, match="config.toml"):
        load()


def test_an_unknown_key_in_the_file_names_the_keys_its_section_knows(tmp_path: Path) -> None:
    write_config(tmp_path, '[cache]\nttll = "1d"\n')
    with pytest.raises(SettingError) as caught:
        load()
    message = str(caught.value)
    assert message.startswith(
        "unknown setting cache.ttll (known in [cache]: dir, size_limit, memory_limit, ttl, sampling, bucket"
    )
    assert str(tmp_path / "config" / "config.toml") in message and "invalid value" not in message
    assert caught.value.name == "cache.ttll"


@pytest.mark.parametrize(
    ("text", "said"),
    [
        ('[cach]\nttl = "1d"\n', "unknown section [cach] of setting cach.ttl"),
        ("port = 11435\n", "unknown setting port (settings go in a section"),
    ],
)
def test_an_unknown_section_in_the_file_names_the_known_sections(tmp_path: Path, text: str, said: str) -> None:
    write_config(tmp_path, text)
    with pytest.raises(SettingError) as caught:
        load()
    assert said in str(caught.value) and "[proxy], [cache], [ollama], [log], [tuning]" in str(caught.value)


def test_the_cli_names_an_unknown_key_and_exits_2(tmp_path: Path) -> None:
    write_config(tmp_path, '[cache]\nttll = "1d"\n')
    result = subprocess.run([sys.executable, "-m", "core", "serve"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert (
        "unknown setting cache.ttll (known in [cache]: dir, size_limit, memory_limit, ttl, sampling, bucket"
        in result.stderr
    )


@pytest.mark.parametrize(
    "args", [["serve", "--port", "abc"], ["serve", "--manage-ollama", "maybe"], ["serve", "--upstream", "ftp://x"]]
)
def test_the_cli_exits_2_with_the_message(args: list[str]) -> None:
    result = subprocess.run([sys.executable, "-m", "core", *args], capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert "invalid value" in result.stderr and "accepted:" in result.stderr


def test_version_prints_the_version() -> None:
    from core import __version__

    result = subprocess.run([sys.executable, "-m", "core", "--version"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0 and result.stdout.strip() == f"ollacache {__version__}"


@pytest.mark.parametrize(
    ("text", "expected"), [("1", True), ("on", True), ("Yes", True), ("0", False), ("off", False), ("false", False)]
)
def test_switches_take_the_usual_spellings(monkeypatch: pytest.MonkeyPatch, text: str, expected: bool) -> None:
    monkeypatch.setenv("OLLACACHE_INJECT_OPTIONS", text)
    assert load()["tuning.inject_options"] is expected


def test_ollama_environment_overrides_from_the_file_or_a_variable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_config(tmp_path, '[ollama.env]\nOLLAMA_DEBUG = "1"\nOLLAMA_NUM_PARALLEL = 2\n')
    assert load()["ollama.env"] == {"OLLAMA_DEBUG": "1", "OLLAMA_NUM_PARALLEL": "2"}
    monkeypatch.setenv("OLLACACHE_OLLAMA_ENV", "OLLAMA_DEBUG=0, HTTPS_PROXY=http://proxy:3128")
    assert load()["ollama.env"] == {"OLLAMA_DEBUG": "0", "HTTPS_PROXY": "http://proxy:3128"}
    monkeypatch.setenv("OLLACACHE_OLLAMA_ENV", "not an assignment")
    with pytest.raises(SettingError, match="ollama.env"):
        load()


def test_switch_flags_turn_things_on_and_off() -> None:
    assert load({"ollama.port_takeover": False})["ollama.port_takeover"] is False
    assert load({"tuning.inject_options": True})["tuning.inject_options"] is True
    assert load()["ollama.port_takeover"] is True and load()["tuning.inject_options"] is False


def test_every_setting_says_how_a_form_shows_it_and_what_a_change_needs() -> None:
    for spec in SPECS:
        assert spec.section in SECTIONS and spec.help and spec.accepted
        assert spec.effect in ("nothing", "engine restart", "Ollama restart")
        assert bool(spec.choices) == (spec.kind == "choice")
        assert (spec.kind == "switch") == spec.is_switch
        for choice in spec.choices:
            assert spec.parse(choice) == choice


def test_settings_remember_where_each_value_came_from(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write_config(tmp_path, '[cache]\nttl = "12h"\nsize_limit = "1GiB"\n')
    monkeypatch.setenv("OLLACACHE_CACHE_SIZE", "3GiB")
    settings = load({"proxy.port": "0"})
    path = str(tmp_path / "config" / "config.toml")
    assert settings.source("cache.ttl") == Source("file", path)
    assert settings.source("cache.size_limit") == Source("environment", "OLLACACHE_CACHE_SIZE")
    assert settings.source("proxy.port") == Source("flag", "--port")
    assert settings.source("proxy.host") == Source("default")
    assert [settings.source(name).overrides_file for name in ("cache.ttl", "cache.size_limit", "proxy.port")] == [
        False,
        True,
        True,
    ]


def test_reread_takes_the_file_again_but_keeps_what_the_environment_and_flags_set(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OLLACACHE_TTL", "1h")
    settings = load({"proxy.port": "0"})
    write_config(tmp_path, '[cache]\nttl = "12h"\nsize_limit = "1GiB"\n[proxy]\nport = 9000\n')
    again = reread(settings)
    assert (again["cache.ttl"], again["proxy.port"], again["cache.size_limit"]) == (3600, 0, 2**30)
    assert again.source("cache.size_limit").kind == "file"
    write_config(tmp_path, "")
    assert reread(again)["cache.size_limit"] == 2 * 2**30 and reread(again).source("cache.size_limit").kind == "default"


def test_several_settings_are_written_at_once_keeping_the_comments(tmp_path: Path) -> None:
    write_config(tmp_path, '# mine\n[cache]\nttl = "30d"  # a month\nsize_limit = "1GiB"\n')
    write_settings(
        tmp_path / "config",
        {
            "cache.ttl": "7d",
            "cache.size_limit": None,
            "tuning.num_ctx": 4096,
            "proxy.cors_origins": ("http://a.test",),
            "ollama.env": {"A": "1"},
        },
    )
    text = (tmp_path / "config" / "config.toml").read_text()
    assert text.startswith("# mine\n") and 'ttl = "7d"  # a month' in text and "size_limit" not in text
    settings = load()
    assert settings["cache.ttl"] == 7 * 86400 and settings["tuning.num_ctx"] == 4096
    assert settings["proxy.cors_origins"] == ("http://a.test",) and settings["ollama.env"] == {"A": "1"}


@pytest.mark.parametrize(("count", "shown"), [(2 * 2**30, "2 GiB"), (1536 * 2**10, "1.5 MiB"), (512, "512 B")])
def test_byte_counts_are_shown_in_binary_units(count: int, shown: str) -> None:
    assert human_bytes(count) == shown and parse_bytes(shown) in range(count - 2**20, count + 2**20)


@pytest.mark.parametrize(("seconds", "shown"), [(30 * 86400, "30d"), (43200, "12h"), (90, "90s"), (0, "0")])
def test_durations_are_shown_in_the_largest_whole_unit(seconds: int, shown: str) -> None:
    assert human_seconds(seconds) == shown and parse_seconds(shown) == seconds


def test_a_relative_path_in_the_file_is_taken_from_the_config_folder_and_said(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An earlier version saved a typo ("lots") as the cache folder: the engine still starts, on a cache beside
    the config file (never in whatever folder it was started from), and says how it read the value."""
    monkeypatch.delenv("OLLACACHE_CACHE_DIR")
    monkeypatch.chdir(tmp_path)
    write_config(tmp_path, '[cache]\ndir = "lots"\n')
    settings = load()
    assert settings.cache_dir == tmp_path / "config" / "lots"
    [note] = settings.notes
    assert note.startswith(
        f"cache.dir in {tmp_path / 'config' / 'config.toml'} is a relative path (lots); it is "
        f"taken as {tmp_path / 'config' / 'lots'}"
    )
    assert reread(settings).cache_dir == tmp_path / "config" / "lots" and reread(settings).notes == settings.notes


def test_ollamas_server_variables_reach_it_only_when_set_and_written_as_it_reads_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert server_environment(load().__getitem__) == {}  # unset: Ollama does as it would anyway
    write_config(
        tmp_path, '[ollama]\nno_cloud = true\ndebug = "trace"\nload_timeout = "10m"\nremotes = "a.test, b.test"\n'
    )
    monkeypatch.setenv("OLLACACHE_OLLAMA_GPU_OVERHEAD", "512MiB")
    monkeypatch.setenv("OLLACACHE_LLAMA_ARG_FIT", "off")
    monkeypatch.setenv("OLLACACHE_OLLAMA_ENV", "OLLAMA_DEBUG=1")  # ollama.env wins, as over the tuning
    settings = load()
    assert server_environment(settings.__getitem__) == {
        "OLLAMA_NO_CLOUD": "1",
        "OLLAMA_REMOTES": "a.test,b.test",
        "OLLAMA_GPU_OVERHEAD": str(512 * 2**20),
        "LLAMA_ARG_FIT": "off",
        "OLLAMA_LOAD_TIMEOUT": "600",
        "OLLAMA_DEBUG": "2",
    }
    assert ollama_env(settings, recommend(linux(VM)))["OLLAMA_DEBUG"] == "1"


def test_the_gpus_and_runner_library_ollama_uses_are_settings_and_bad_values_are_named(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_config(tmp_path, '[ollama]\ncuda_devices = "0, 1"\namd_gfx_version = "10.3.0"\nllm_library = "cpu_avx2"\n')
    assert server_environment(load().__getitem__)["CUDA_VISIBLE_DEVICES"] == "0,1"  # as the GPU libraries read it
    monkeypatch.setenv("OLLACACHE_CUDA_VISIBLE_DEVICES", "GPU-8f1c2d3e,1")  # a UUID and a number
    assert server_environment(load().__getitem__) == {
        "CUDA_VISIBLE_DEVICES": "GPU-8f1c2d3e,1",
        "HSA_OVERRIDE_GFX_VERSION": "10.3.0",
        "OLLAMA_LLM_LIBRARY": "cpu_avx2",
    }
    monkeypatch.setenv("OLLACACHE_HSA_OVERRIDE_GFX_VERSION", "ten")
    with pytest.raises(SettingError, match="HSA_OVERRIDE_GFX_VERSION.*a version such as 10.3.0"):
        load()


def test_every_server_variable_is_an_expert_setting_named_after_it_whose_help_names_it() -> None:
    specs = {spec.name: spec for spec in SPECS}
    for name, server in SERVER_VARIABLES.items():
        spec = specs[name]
        assert spec.section == "Ollama server (expert)" and spec.level == "advanced" and spec.default is None
        assert spec.env == f"OLLACACHE_{server.variable}" and f"({server.variable}" in spec.help and server.unset
    assert "prompts" in specs["ollama.log_requests"].help and specs["ollama.log_requests"].help.startswith("Warning")
