"""Neural tests run torch on one thread: CI runs pytest -n 2 on 2 cores, and OpenMP threads spinning against
each other there are many times slower than one thread each."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import torch


@pytest.fixture(autouse=True)
def _torch_one_thread() -> Iterator[None]:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
