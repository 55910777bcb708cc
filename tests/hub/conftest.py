"""Every test here fails if it leaves a thread running."""

import pytest


@pytest.fixture(autouse=True)
def _threads_are_cleaned_up(no_thread_leak: None) -> None:
    return None
