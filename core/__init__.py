"""Ollacache engine: a caching proxy for the Ollama and OpenAI-compatible APIs (never imports Qt)."""

__version__ = "0.1.0"
