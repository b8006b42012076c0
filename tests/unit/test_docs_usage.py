"""docs/usage.md says what runs: its config example is a valid config showing the
defaults, and every recording it cites exists."""

from __future__ import annotations

import re

import yaml

from proxy.config import StreamsConfig, parse_config
from tests.support.procs import REPO
from tests.support.recordings import recordings

DOC = (REPO / "docs" / "usage.md").read_text()


def test_the_config_example_is_valid_and_shows_the_defaults() -> None:
    [block] = re.findall(r"```yaml\n(.*?)```", DOC, re.DOTALL)
    example = yaml.safe_load(block)
    config = parse_config(
        {**example, "providers": {"openai": {"base_url": "https://api.openai.com/v1"}}}
    )
    assert config.streams == StreamsConfig()  # the example spells out the defaults
    assert config.models["chat"].on_client_disconnect == "close"


def test_every_recording_cited_exists() -> None:
    known = {item.name for item in recordings()}
    media_types = {"application/octet-stream", "application/xhtml+xml", "text/html"}
    cited = set(re.findall(r"`([a-z]+/[a-z0-9.-]+)`", DOC)) - media_types
    assert cited and cited <= known, sorted(cited - known)
