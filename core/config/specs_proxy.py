"""The ``[proxy]`` settings of where Ollacache listens and which Ollama it forwards to: the address and port, Ollama's
address, the web pages a browser may call Ollacache from, and sharing it on the network with API keys."""

from __future__ import annotations

from core.config.parsing import choice, parse_bool, parse_host, parse_origins, parse_port, parse_url, parse_whole
from core.config.spec import ENGINE_RESTART, GENERAL, OLLAMA, Spec

# who must send a key: the values of core.access.peers.REQUIRE (config sits below access, so they are spelled here)
REQUIRE = ("remote", "always")

PROXY_SPECS: tuple[Spec, ...] = (
    Spec(
        "proxy.host",
        "127.0.0.1",
        parse_host,
        "a host name or IP address to listen on",
        "OLLACACHE_HOST",
        "--host",
        "The address Ollacache listens on; 127.0.0.1 keeps it to this computer.",
        section=GENERAL,
        kind="text",
        effect=ENGINE_RESTART,
        label="Listen address",
        ask="Enter an IP address such as 127.0.0.1, or a host name",
    ),
    Spec(
        "proxy.port",
        11435,
        parse_port,
        "a port number from 0 to 65535 (0 picks a free port)",
        "OLLACACHE_PORT",
        "--port",
        "The port your tools connect to, unless Ollacache takes over Ollama's.",
        section=GENERAL,
        kind="number",
        effect=ENGINE_RESTART,
        label="Port",
        level="common",
        ask="Enter a port number from 1 to 65535 (or 0 to pick a free one)",
    ),
    Spec(
        "proxy.upstream",
        "http://127.0.0.1:11434",
        parse_url,
        "an http:// or https:// URL",
        "OLLACACHE_UPSTREAM",
        "--upstream",
        "The address of the Ollama that answers new prompts.",
        section=OLLAMA,
        kind="text",
        effect=ENGINE_RESTART,
        label="Ollama's address",
        level="common",
        ask="Enter an address such as http://127.0.0.1:11434",
    ),
    Spec(
        "proxy.cors_origins",
        (),
        parse_origins,
        "a list of origins, or a comma-separated string",
        "OLLACACHE_ORIGINS",
        None,
        "Web pages, besides Ollama's defaults, that may call Ollacache from a browser.",
        section=GENERAL,
        kind="list",
        effect=ENGINE_RESTART,
        label="Allowed web origins",
        ask="Enter origins separated by commas, such as https://example.com, http://localhost:3000",
    ),
    Spec(
        "proxy.share",
        False,
        parse_bool,
        "true or false (also 1/0, on/off, yes/no)",
        "OLLACACHE_SHARE",
        "--share",
        "Let other computers on your network use Ollacache, each with an API key of this install "
        "(ollacache keys add NAME). Traffic is plain HTTP unless you give a certificate.",
        section=GENERAL,
        kind="switch",
        effect=ENGINE_RESTART,
        label="Share on my network",
        level="common",
    ),
    Spec(
        "proxy.require_key",
        "remote",
        choice(*REQUIRE),
        "one of remote, always",
        "OLLACACHE_REQUIRE_KEY",
        "--require-key",
        "Who must send an API key: clients on other computers while sharing (remote), or every "
        "client, this computer's too (always).",
        section=GENERAL,
        kind="choice",
        effect=ENGINE_RESTART,
        choices=REQUIRE,
        label="API key required from",
    ),
    Spec(
        "proxy.rate_limit",
        0,
        parse_whole(0),
        "a whole number of requests a minute (0: no limit)",
        "OLLACACHE_RATE_LIMIT",
        "--rate-limit",
        "The most requests a minute each API key may send; beyond it a client is told to wait (0: no limit).",
        section=GENERAL,
        kind="number",
        effect=ENGINE_RESTART,
        label="Requests a minute per API key",
    ),
)
