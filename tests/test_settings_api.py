"""The settings table on a real engine: GET and PUT /-/settings, through both control clients."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import httpx
import pytest

from core.config.settings import SECTIONS, SPECS, load
from core.control.client import AsyncControlClient, ControlClient, ControlError
from tests.fakes.ollama_server import FakeOllama
from tests.harness import RunningProxy, proxy_in_thread
from tests.test_supervisor_process import running, supervised, wait_for

COMMENTED = """\
# my Ollacache settings
[cache]
ttl = "30d"  # a month, for now

[tuning]
# keep_alive = "1h"
"""


def config_file() -> Path:
    return Path(os.environ["OLLACACHE_CONFIG_DIR"]) / "config.toml"


def write_config(text: str) -> bytes:
    path = config_file()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path.read_bytes()


def test_the_table_has_every_setting_with_what_a_form_needs(proxy: RunningProxy) -> None:
    with ControlClient(proxy.url, proxy.token) as client:
        table = client.settings()
    rows = {row["name"]: row for row in table["settings"]}
    assert list(rows) == [spec.name for spec in SPECS]
    assert table["sections"] == list(SECTIONS) and {row["section"] for row in rows.values()} == set(SECTIONS)
    size = rows["cache.size_limit"]
    assert size["kind"] == "bytes" and size["value"] == 2 * 2**30 and size["human"] == "2 GiB"
    assert size["source"] == "default" and size["editable"] and size["effect"] == "engine restart"
    assert size["accepted"] == "a byte count such as 2147483648, 500MB or 2GiB"
    ttl = rows["cache.ttl"]
    assert ttl["kind"] == "duration" and ttl["value"] == 30 * 86400 and ttl["human"] == "30d"
    assert rows["ollama.manage"]["choices"] == ["auto", "always", "never"]
    assert rows["tuning.kv_cache_type"]["kind"] == "choice" and rows["tuning.kv_cache_type"]["choices"][0] == "f16"
    assert rows["tuning.num_ctx"]["effect"] == "Ollama restart" and rows["tuning.num_ctx"]["value"] is None
    assert rows["ollama.port_takeover"]["kind"] == "switch" and rows["ollama.port_takeover"]["value"] is True
    assert rows["ollama.env"]["kind"] == "table" and rows["ollama.env"]["value"] == {}
    # the test environment sets the cache directory, and the harness gives the port as a flag
    cache_dir = rows["cache.dir"]
    assert cache_dir["kind"] == "path" and cache_dir["value"] == os.environ["OLLACACHE_CACHE_DIR"]
    assert cache_dir["source"] == "environment" and cache_dir["set_by"] == "OLLACACHE_CACHE_DIR"
    assert not cache_dir["editable"]
    assert rows["proxy.port"]["source"] == "flag" and rows["proxy.port"]["set_by"] == "--port"


def test_a_value_from_the_environment_shows_so_and_cannot_be_changed(
    upstream: tuple[FakeOllama, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OLLACACHE_TTL", "12h")
    with proxy_in_thread(upstream[1]) as proxy, ControlClient(proxy.url, proxy.token) as client:
        ttl = next(row for row in client.settings()["settings"] if row["name"] == "cache.ttl")
        assert (ttl["value"], ttl["human"], ttl["source"], ttl["set_by"]) == (
            43200,
            "12h",
            "environment",
            "OLLACACHE_TTL",
        )
        assert ttl["editable"] is False
        with pytest.raises(ControlError) as refused:
            client.update_settings({"cache.ttl": "7d", "cache.size_limit": "1GiB"})
    assert refused.value.status == 409 and "OLLACACHE_TTL" in str(refused.value)
    assert list(refused.value.fields) == ["cache.ttl"]
    assert not config_file().exists()  # nothing written, the good value neither


def test_bad_input_is_refused_field_by_field_and_nothing_is_written(proxy: RunningProxy) -> None:
    before = write_config(COMMENTED)
    with ControlClient(proxy.url, proxy.token) as client:
        with pytest.raises(ControlError) as refused:
            client.update_settings(
                {
                    "cache.ttl": "a week",
                    "tuning.num_ctx": 0,
                    "cache.size_limit": "1GiB",
                    "cache.tll": "7d",
                    "proxy.host": ["a"],
                }
            )
    assert refused.value.status == 400
    fields = refused.value.fields
    assert set(fields) == {"cache.ttl", "tuning.num_ctx", "cache.tll", "proxy.host"}
    assert fields["cache.ttl"] == "Enter a duration such as 12h or 30d (0 keeps answers for good)"  # people's words
    assert fields["tuning.num_ctx"] == "Enter a number of tokens, such as 8192"
    assert "known in [cache]: dir, size_limit, memory_limit, ttl" in fields["cache.tll"]
    assert str(refused.value).endswith(
        "Nothing was saved: Keep answers for, Context length, cache.tll and Listen address need other values"
    )
    assert config_file().read_bytes() == before


def test_a_path_must_be_absolute_and_a_folder_usable_before_anything_is_written(
    proxy: RunningProxy, tmp_path: Path
) -> None:
    """A typo in a folder setting ("lots") would have made a new folder wherever the engine was started (for the
    cache folder: an empty cache, every answer and statistic seemingly gone)."""
    (tmp_path / "a-file").write_text("")
    with ControlClient(proxy.url, proxy.token) as client:
        for value, message in (
            ("lots", "'lots' is not a full path: enter a full path, such as "),
            (str(tmp_path / "a-file" / "models"), "is a file, not a folder"),
        ):
            with pytest.raises(ControlError) as refused:
                client.update_settings({"ollama.models_dir": value})
            assert refused.value.status == 400 and message in refused.value.fields["ollama.models_dir"]
        assert not config_file().exists()
        answer = client.update_settings({"ollama.models_dir": str(tmp_path / "new" / "models")})  # creatable
    assert answer["changes"]["ollama.models_dir"]["result"] == "needs Ollama restart"


def test_a_dry_run_checks_as_a_put_does_and_writes_nothing(proxy: RunningProxy) -> None:
    with ControlClient(proxy.url, proxy.token) as client:
        checked = client.update_settings({"cache.ttl": "7d", "tuning.num_thread": 1}, dry_run=True)
        with pytest.raises(ControlError) as refused:
            client.update_settings({"cache.size_limit": "lots"}, dry_run=True)
        table = {row["name"]: row for row in client.settings()["settings"]}
    assert {name: change["result"] for name, change in checked["changes"].items()} == {
        "cache.ttl": "valid",
        "tuning.num_thread": "valid",
    }
    assert refused.value.fields == {"cache.size_limit": "Enter a size such as 2 GiB or 500 MB"}
    assert not config_file().exists()
    assert table["cache.ttl"]["source"] == "default" and table["tuning.num_thread"]["value"] is None


def test_every_setting_has_a_label_a_sentence_and_a_level_and_shows_the_value_in_force(proxy: RunningProxy) -> None:
    with ControlClient(proxy.url, proxy.token) as client:
        rows = {row["name"]: row for row in client.settings()["settings"]}
    for row in rows.values():
        assert row["label"] and row["label"][0].isupper() and "." not in row["label"], row["name"]
        assert row["help"][0].isupper() and row["help"].endswith("."), row["name"]
        assert row["level"] in ("common", "advanced")
        assert row["shown"]["text"] is not None and row["shown"]["origin"], row["name"]
    assert rows["cache.size_limit"]["label"] == "Cache size" and rows["cache.size_limit"]["level"] == "common"
    assert all(
        rows[name]["level"] == "advanced"
        for name in ("cache.memo_limit", "cache.hits_limit", "cache.sqlite_cache", "cache.sqlite_mmap")
    )
    assert rows["cache.size_limit"]["shown"] == {"text": "2 GiB", "origin": "default"}
    assert rows["cache.dir"]["shown"]["text"] == os.environ["OLLACACHE_CACHE_DIR"]  # the real folder
    assert rows["cache.dir"]["shown"]["origin"] == "set by OLLACACHE_CACHE_DIR"
    assert rows["tuning.num_thread"]["shown"]["origin"].startswith("detected: ")


def test_a_value_the_machine_cannot_honour_is_refused_before_anything_is_written(proxy: RunningProxy) -> None:
    with ControlClient(proxy.url, proxy.token) as client:
        with pytest.raises(ControlError) as refused:
            client.update_settings({"tuning.num_thread": 100_000, "cache.ttl": "7d"})
    assert refused.value.status == 400 and list(refused.value.fields) == ["tuning.num_thread"]
    assert not config_file().exists()


def test_good_input_is_written_at_once_keeping_the_comments(proxy: RunningProxy) -> None:
    write_config(COMMENTED)
    with ControlClient(proxy.url, proxy.token) as client:
        answer = client.update_settings(
            {
                "cache.ttl": "7d",
                "tuning.num_ctx": 4096,
                "cache.memory_limit": "32MiB",
                "ollama.env": {"OLLAMA_DEBUG": "1"},
            }
        )
        rows = {row["name"]: row for row in client.settings()["settings"]}
    text = config_file().read_text()
    assert text.startswith("# my Ollacache settings\n") and '# keep_alive = "1h"' in text
    assert 'ttl = "7d"  # a month, for now' in text and "num_ctx = 4096" in text
    settings = load()
    assert settings["cache.ttl"] == 7 * 86400 and settings["tuning.num_ctx"] == 4096
    assert settings["cache.memory_limit"] == 32 * 2**20 and settings["ollama.env"] == {"OLLAMA_DEBUG": "1"}
    changes = answer["changes"]
    assert changes["cache.ttl"]["result"] == "needs engine restart"
    # the tests' engine does not supervise Ollama: Ollama's settings wait for Ollama's own restart
    assert changes["tuning.num_ctx"]["result"] == "needs Ollama restart"
    assert "not supervised" in changes["tuning.num_ctx"]["message"]
    assert rows["cache.ttl"]["value"] == 7 * 86400 and rows["cache.ttl"]["source"] == "file"
    assert rows["cache.ttl"]["set_by"] == str(config_file()) and rows["cache.ttl"]["pending"] is True
    assert rows["tuning.num_ctx"]["value"] == 4096 and rows["tuning.num_ctx"]["pending"] is False
    assert httpx.get(proxy.url + "/-/hardware").json()["recommended"]["num_ctx"] == 4096


def test_a_value_already_in_force_is_applied_with_no_restart(proxy: RunningProxy) -> None:
    with ControlClient(proxy.url, proxy.token) as client:
        answer = client.update_settings({"cache.ttl": "30d", "tuning.num_ctx": None})
    assert {change["result"] for change in answer["changes"].values()} == {"applied"}
    assert 'ttl = "30d"' in config_file().read_text()


def test_null_puts_a_setting_back_to_its_default(proxy: RunningProxy) -> None:
    write_config(COMMENTED)
    with ControlClient(proxy.url, proxy.token) as client:
        client.update_settings({"cache.ttl": None})
        ttl = next(row for row in client.settings()["settings"] if row["name"] == "cache.ttl")
    assert "ttl" not in config_file().read_text().replace("# my", "") and ttl["source"] == "default"
    assert "# my Ollacache settings" in config_file().read_text()


def test_changing_settings_needs_the_token_and_a_json_object(proxy: RunningProxy) -> None:
    assert httpx.put(proxy.url + "/-/settings", json={"cache.ttl": "7d"}).status_code == 401
    wrong = httpx.put(proxy.url + "/-/settings", json=["cache.ttl"], headers=proxy.auth)
    assert wrong.status_code == 400 and wrong.json()["error"] == "the body must be a JSON object"
    assert not config_file().exists()


def test_the_async_client_reads_and_changes_settings(proxy: RunningProxy) -> None:
    async def run() -> tuple[int, str]:
        async with AsyncControlClient(proxy.url, proxy.token) as client:
            answer = await client.update_settings({"cache.size_limit": "1GiB"})
            rows = {row["name"]: row for row in (await client.settings())["settings"]}
            return rows["cache.size_limit"]["value"], answer["changes"]["cache.size_limit"]["result"]

    assert asyncio.run(run()) == (2**30, "needs engine restart")


def test_ollama_settings_restart_a_supervised_ollama_with_them() -> None:
    context, upstream = supervised()
    with context as proxy:
        first = wait_for(running(proxy), "Ollama to run")
        with ControlClient(proxy.url, proxy.token) as client:
            answer = client.update_settings({"tuning.num_ctx": 4096, "tuning.keep_alive": "2h"})
        assert {change["result"] for change in answer["changes"].values()} == {"Ollama restarted"}
        wait_for(running(proxy, not_pid=first["pid"]), "Ollama to be restarted")
        env = httpx.get(upstream + "/_fake/env").json()["env"]
        assert env["OLLAMA_CONTEXT_LENGTH"] == "4096" and env["OLLAMA_KEEP_ALIVE"] == "2h"
    assert "num_ctx = 4096" in config_file().read_text()


def test_the_prompt_cache_shows_its_size_in_force_in_the_ollama_tab_and_reaches_the_runners() -> None:
    context, upstream = supervised()
    with context as proxy:
        first = wait_for(running(proxy), "Ollama to run")
        recommended = httpx.get(proxy.url + "/-/hardware").json()["recommended"]["prompt_cache_ram"]
        with ControlClient(proxy.url, proxy.token) as client:
            row = next(row for row in client.settings()["settings"] if row["name"] == "tuning.prompt_cache_ram")
            assert (row["section"], row["level"], row["value"]) == ("Ollama", "common", None)
            assert row["shown"]["text"] == str(recommended) and "a sixteenth of" in row["shown"]["origin"]
            assert httpx.get(upstream + "/_fake/env").json()["env"]["LLAMA_ARG_CACHE_RAM"] == str(recommended)
            answer = client.update_settings({"tuning.prompt_cache_ram": 512})
        assert answer["changes"]["tuning.prompt_cache_ram"]["result"] == "Ollama restarted"
        wait_for(running(proxy, not_pid=first["pid"]), "Ollama to be restarted")
        assert httpx.get(upstream + "/_fake/env").json()["env"]["LLAMA_ARG_CACHE_RAM"] == "512"
    assert "prompt_cache_ram = 512" in config_file().read_text()


def test_ollamas_server_variables_show_ollamas_default_and_reach_a_supervised_ollama() -> None:
    context, upstream = supervised()
    with context as proxy:
        first = wait_for(running(proxy), "Ollama to run")
        with ControlClient(proxy.url, proxy.token) as client:
            rows = {row["name"]: row for row in client.settings()["settings"]}
            answer = client.update_settings({"ollama.no_cloud": True, "ollama.debug": "trace", "ollama.max_queue": 64})
        assert {change["result"] for change in answer["changes"].values()} == {"Ollama restarted"}
        wait_for(running(proxy, not_pid=first["pid"]), "Ollama to be restarted")
        env = httpx.get(upstream + "/_fake/env").json()["env"]
    assert rows["ollama.vulkan"]["section"] == "Ollama server (expert)" and rows["ollama.vulkan"]["value"] is None
    assert rows["ollama.vulkan"]["shown"] == {"text": "on", "origin": "Ollama's default, OLLAMA_VULKAN unset"}
    assert (
        rows["ollama.log_requests"]["help"].startswith("Warning") and "prompts" in rows["ollama.log_requests"]["help"]
    )
    assert (env["OLLAMA_NO_CLOUD"], env["OLLAMA_DEBUG"], env["OLLAMA_MAX_QUEUE"]) == ("1", "2", "64")
    assert "OLLAMA_VULKAN" not in env and "OLLAMA_DEBUG_LOG_REQUESTS" not in env  # unset: left to Ollama


def test_the_models_folder_and_origins_reach_a_supervised_ollama(tmp_path: Path) -> None:
    context, upstream = supervised()
    models = tmp_path / "models"
    with context as proxy:
        first = wait_for(running(proxy), "Ollama to run")
        with ControlClient(proxy.url, proxy.token) as client:
            answer = client.update_settings(
                {"ollama.models_dir": str(models), "ollama.origins": "app://notes, http://example.test"}
            )
        assert {change["result"] for change in answer["changes"].values()} == {"Ollama restarted"}
        wait_for(running(proxy, not_pid=first["pid"]), "Ollama to be restarted")
        env = httpx.get(upstream + "/_fake/env").json()["env"]
    assert env["OLLAMA_MODELS"] == str(models) and env["OLLAMA_ORIGINS"] == "app://notes,http://example.test"


def test_a_password_in_a_store_url_is_never_shown_and_survives_a_form_sent_back(proxy: RunningProxy) -> None:
    write_config('[cache]\nstore = "redis://ollacache:s3cret@10.0.0.5:6379/2"\n')
    with ControlClient(proxy.url, proxy.token) as client:
        shown = {row["name"]: row for row in client.settings()["settings"]}["cache.store"]["value"]
        assert shown == "redis://***@10.0.0.5:6379/2"
        client.update_settings({"cache.store": shown, "cache.ttl": "7d"})  # a form sends back what it showed
        assert "s3cret" not in httpx.get(proxy.url + "/-/settings").text
    assert load()["cache.store"] == "redis://ollacache:s3cret@10.0.0.5:6379/2"
    with ControlClient(proxy.url, proxy.token) as client:
        client.update_settings({"cache.store": "redis://10.0.0.6:6379/0"})  # a new URL is taken as it is
    assert load()["cache.store"] == "redis://10.0.0.6:6379/0"


def test_a_relative_path_an_earlier_version_wrote_is_reported_in_health_and_the_engine_starts(
    upstream: tuple[FakeOllama, str],
) -> None:
    write_config('[ollama]\nmodels_dir = "models"\n')
    with proxy_in_thread(upstream[1]) as proxy:
        health = httpx.get(proxy.url + "/-/health").json()
    folder = config_file().parent
    assert health["settings_notes"] == [
        f"ollama.models_dir in {config_file()} is a relative path (models); it is "
        f"taken as {folder / 'models'}: write the full path there to silence this"
    ]
