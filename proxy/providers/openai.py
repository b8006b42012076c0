"""Any OpenAI-compatible API: OpenAI, Mistral, Together, Groq, DeepSeek, vLLM, Ollama, …"""

from __future__ import annotations

from proxy.providers.base import Provider

__all__ = ["OpenAIProvider"]


class OpenAIProvider(Provider):
    kind = "openai"
    request_headers = ("Accept", "Idempotency-Key")

    def auth_headers(self) -> dict[str, str]:
        if self.config.api_key is None or not self.config.api_key.get_secret_value():
            return {}  # e.g. a local vLLM or Ollama without auth
        return {"Authorization": f"Bearer {self.config.api_key.get_secret_value()}"}
