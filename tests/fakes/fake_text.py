"""The fake "model": word-token text, thinking, JSON mode, tool calls, embeddings, timings.

Output is a pure function of the request when sampling is deterministic
(``temperature == 0`` or a ``seed`` other than -1); otherwise it is random.
``num_predict`` and ``stop`` only truncate, so a capped answer is a prefix of
the uncapped one, as with a real seeded sampler.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import re
import struct
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

VOCAB: tuple[str, ...] = tuple(
    "amber basil cedar delta ember fable garnet harbor ivory juniper kestrel lumen meadow "
    "nectar orbit pebble quartz raven saffron tundra umber velvet willow yarrow zephyr anchor "
    "beacon canyon drift echo falcon glacier hollow island jasper kelp lantern marble nimbus "
    "opal prairie quill ridge summit thistle upland vortex".split()
)
_TOKEN_RE = re.compile(r"\w+|[^\w\s]")
_UNSAMPLED_OPTIONS = frozenset(
    {
        "num_predict",
        "stop",
        "num_thread",
        "num_ctx",
        "num_batch",
        "num_gpu",
        "main_gpu",
        "use_mmap",
        "use_mlock",
        "numa",
        "low_vram",
        "num_keep",
    }
)
_VOLATILE_FIELDS = frozenset({"model", "stream", "stream_options", "keep_alive", "options"})
PROMPT_SPEEDUP = 10  # under a speed_curve, prompt tokens/s = generated tokens/s x this


@dataclass
class Piece:
    """One streamed chunk's worth of model output."""

    content: str = ""
    thinking: str = ""
    tool_calls: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class Answer:
    """A whole generated answer; ``eval_count`` is in tokens."""

    pieces: list[Piece]
    done_reason: str
    eval_count: int

    @property
    def content(self) -> str:
        return "".join(p.content for p in self.pieces)

    @property
    def thinking(self) -> str:
        return "".join(p.thinking for p in self.pieces)

    @property
    def tool_calls(self) -> list[dict[str, Any]]:
        return [call for p in self.pieces for call in p.tool_calls]


def count_tokens(text: str) -> int:
    """Prompt tokens (count) of ``text``: words and punctuation marks."""
    return len(_TOKEN_RE.findall(text))


def token_ids(text: str) -> list[int]:
    """Stable fake token ids for ``text`` (what Ollama returns as ``context``)."""
    return [int.from_bytes(hashlib.sha256(t.encode()).digest()[:4], "big") % 128_000 for t in _TOKEN_RE.findall(text)]


def is_deterministic(options: Mapping[str, Any]) -> bool:
    """True when the sampler would be reproducible: temperature 0 or a fixed seed."""
    seed = options.get("seed")
    return options.get("temperature") == 0 or (seed is not None and seed != -1)


def make_rng(model: str, request: Mapping[str, Any]) -> random.Random:
    """A RNG seeded from the request when deterministic, from the OS otherwise.

    ``model`` should be the canonical model name so aliases give the same text.
    """
    options = request.get("options") or {}
    if not isinstance(options, Mapping) or not is_deterministic(options):
        return random.Random(os.urandom(16))
    material = {k: v for k, v in request.items() if k not in _VOLATILE_FIELDS}
    material["model"] = model
    material["options"] = {k: v for k, v in options.items() if k not in _UNSAMPLED_OPTIONS}
    blob = json.dumps(material, sort_keys=True, separators=(",", ":"), default=str)
    return random.Random(hashlib.sha256(blob.encode()).digest())


def _words(rng: random.Random, n: int) -> list[str]:
    words = [rng.choice(VOCAB) for _ in range(n)]
    return [w.capitalize() if i == 0 else " " + w for i, w in enumerate(words)]


def _value_for(rng: random.Random, schema: Mapping[str, Any]) -> Any:
    """A plausible value for a JSON-schema property."""
    if schema.get("enum"):
        return rng.choice(list(schema["enum"]))
    kind = schema.get("type", "string")
    kind = kind[0] if isinstance(kind, list) and kind else kind
    if kind == "integer":
        return rng.randint(1, 100)
    if kind == "number":
        return rng.randint(0, 10_000) / 100
    if kind == "boolean":
        return rng.random() < 0.5
    empty: dict[str, Any] = {"array": [], "object": {}, "null": None}
    return empty[kind] if kind in empty else rng.choice(VOCAB)


def _json_tokens(rng: random.Random, fmt: Any, n: int) -> list[str]:
    """A JSON object string (honouring a schema's properties) split into ``n`` tokens."""
    text = "".join(_words(rng, n)).strip()
    props = fmt.get("properties") if isinstance(fmt, Mapping) else None
    if isinstance(props, Mapping) and props:
        obj = {name: _value_for(rng, s if isinstance(s, Mapping) else {}) for name, s in props.items()}
        holder = next((k for k, s in props.items() if isinstance(s, Mapping) and s.get("type") == "string"), None)
        if holder is not None:
            obj[holder] = text
    else:
        obj = {"response": text}
    full = json.dumps(obj)
    n = max(1, min(n, len(full)))
    cuts = [i * len(full) // n for i in range(n + 1)]
    return [full[a:b] for a, b in zip(cuts, cuts[1:], strict=False)]


def _tool_call(rng: random.Random, tools: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """A native Ollama tool call for one of ``tools`` with schema-shaped arguments."""
    function = rng.choice(list(tools)).get("function") or {}
    params = function.get("parameters") or {}
    props = params.get("properties") or {}
    names = params.get("required") or list(props)
    arguments = {name: _value_for(rng, props.get(name) or {}) for name in names}
    call_id = "call_" + "".join(rng.choice("abcdefghijklmnopqrstuvwxyz0123456789") for _ in range(8))
    return {"id": call_id, "function": {"index": 0, "name": function.get("name", ""), "arguments": arguments}}


def _cut_at_stop(tokens: list[str], stops: Sequence[str]) -> tuple[list[str], int | None]:
    """Truncate content tokens before the first stop string; returns (tokens, tokens consumed)."""
    text = ""
    for consumed, token in enumerate(tokens, start=1):
        text += token
        hits = [text.find(s) for s in stops if s and s in text]
        if hits:
            keep, out = min(hits), []
            for tok in tokens[:consumed]:
                part = tok[: max(0, keep)]
                keep -= len(tok)
                if part:
                    out.append(part)
            return out, consumed
    return tokens, None


def compose_answer(
    rng: random.Random,
    *,
    tokens: int,
    think: bool,
    fmt: Any = None,
    tools: Sequence[Mapping[str, Any]] = (),
    num_predict: int | None = None,
    stop: Sequence[str] = (),
) -> Answer:
    """Generate an answer of ``tokens`` tokens (thinking first, then content or a tool call)."""
    n_think = max(1, tokens // 2) if think and tokens > 1 else 0
    n_content = tokens - n_think
    thinking = _words(rng, n_think)
    call = _tool_call(rng, tools) if tools else None
    content = [] if call else (_json_tokens(rng, fmt, n_content) if fmt else _words(rng, n_content))
    limit = num_predict if num_predict is not None and num_predict > 0 else None
    total = n_think + (n_content if call else len(content))
    reason = "length" if limit is not None and limit < total else "stop"
    budget = total if limit is None else min(limit, total)
    thinking = thinking[:budget]
    content = content[: budget - len(thinking)]
    used = budget
    content, consumed = _cut_at_stop(content, stop)
    if consumed is not None:
        used, reason = len(thinking) + consumed, "stop"
    pieces = [Piece(thinking=t) for t in thinking] + [Piece(content=c) for c in content]
    if call and reason == "stop":
        pieces.append(Piece(tool_calls=[call]))
    return Answer(pieces=pieces, done_reason=reason, eval_count=used)


def _f32(value: float) -> float:
    """Round to float32 and return the shortest decimal that round-trips (Go's float32 output)."""
    as32: float = struct.unpack("<f", struct.pack("<f", value))[0]
    for digits in range(1, 10):
        short = float(f"{as32:.{digits}g}")
        if struct.unpack("<f", struct.pack("<f", short))[0] == as32:
            return short
    return as32


def embedding_vector(text: str, dim: int, *, normalize: bool = True) -> list[float]:
    """Deterministic embedding of ``text`` with ``dim`` floats (unit length when normalised)."""
    raw: list[float] = []
    block = 0
    while len(raw) < dim:
        digest = hashlib.sha256(f"{block}\x00{text}".encode()).digest()
        raw.extend(int.from_bytes(digest[i : i + 4], "big") / 2**31 - 1.0 for i in range(0, 32, 4))
        block += 1
    raw = raw[:dim]
    if not normalize:
        return [struct.unpack("<f", struct.pack("<f", v))[0] for v in raw]
    norm = sum(v * v for v in raw) ** 0.5 or 1.0
    return [_f32(v / norm) for v in raw]


def curve_speed(curve: Mapping[Any, float], num_thread: Any) -> float:
    """Tokens per second at ``num_thread`` on a ``speed_curve`` ({thread count: tokens/s}).

    Between two keys the speed is interpolated linearly; beyond the lowest or highest key it is that
    key's speed (a flat extension: no extrapolation). A missing or non-numeric ``num_thread`` reads
    as the lowest key.
    """
    points = sorted((int(key), float(speed)) for key, speed in curve.items())
    if isinstance(num_thread, bool) or not isinstance(num_thread, (int, float)):
        return points[0][1]
    if num_thread <= points[0][0]:
        return points[0][1]
    for (low, low_speed), (high, high_speed) in zip(points, points[1:], strict=False):
        if num_thread <= high:
            return low_speed + (high_speed - low_speed) * (num_thread - low) / (high - low)
    return points[-1][1]


def timing_stats(
    *, prompt_eval_count: int, eval_count: int, options: Mapping[str, Any], config: Mapping[str, Any]
) -> dict[str, int]:
    """Ollama's metrics (durations in nanoseconds, counts in tokens) for one answer.

    The single place timings are computed. Without a ``speed_curve`` a generated token takes
    ``chunk_delay_ms`` (20 ms when that is 0) and a prompt token 0.2 ms. With one, generation runs
    at `curve_speed` of ``options["num_thread"]`` tokens per second and prompt evaluation
    `PROMPT_SPEEDUP` times faster, as prompt tokens are evaluated in batches. The durations are
    synthetic: nothing sleeps for them. The values depend only on the counts, options and config,
    so a streamed and a non-streamed answer to the same deterministic request report identical
    statistics.
    """
    curve = config.get("speed_curve")
    if curve:
        speed = curve_speed(curve, options.get("num_thread"))
        evaluation = round(eval_count * 1e9 / speed)
        prompt_eval = round(max(prompt_eval_count, 1) * 1e9 / (speed * PROMPT_SPEEDUP))
    else:
        ns_per_token = int(float(config["chunk_delay_ms"]) * 1_000_000) or 20_000_000
        evaluation = eval_count * ns_per_token
        prompt_eval = max(prompt_eval_count, 1) * 200_000
    load = 2_000_000
    return {
        "total_duration": load + prompt_eval + evaluation + 1_000_000,
        "load_duration": load,
        "prompt_eval_count": prompt_eval_count,
        "prompt_eval_duration": prompt_eval,
        "eval_count": eval_count,
        "eval_duration": evaluation,
    }
