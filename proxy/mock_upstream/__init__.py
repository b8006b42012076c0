"""A fake OpenAI-compatible upstream for tests, benchmarks and a first run without an API key.

Run it with `costproxy mock-upstream --port 9000`. It also answers Azure OpenAI's paths
(`/openai/deployments/<name>/...`) and Anthropic's Messages API at its root
(`/v1/messages`, `/v1/messages/count_tokens`: see `messages.py`). Per-request behaviour
(latency, errors, missing or forced usage, mid-stream faults) is chosen by `x-mock-*`
headers or model names; see `options.py`. `GET /_mock/requests` shows the last requests it received.
"""

from proxy.mock_upstream.cli import add_arguments, run
from proxy.mock_upstream.options import MockOptions
from proxy.mock_upstream.payloads import prompt_tokens, reply_text
from proxy.mock_upstream.server import RECORDED_REQUESTS, RecordedRequest, create_app

__all__ = [
    "RECORDED_REQUESTS",
    "MockOptions",
    "RecordedRequest",
    "add_arguments",
    "create_app",
    "prompt_tokens",
    "reply_text",
    "run",
]
