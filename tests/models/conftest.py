"""Fixtures shared by the model adapter tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.models.chat_server import Server, running_server


@pytest.fixture()
def server() -> Iterator[Server]:
    """A local chat-completions server that injects faults on request."""
    with running_server() as state:
        yield state
