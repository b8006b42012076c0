"""costproxy: an OpenAI-compatible reverse proxy with exact per-customer LLM spend."""

__version__ = "0.1.0"
