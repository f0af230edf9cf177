"""The runnable examples in the docstrings of the model registry, the fetch module, ProfilerConfig and the
repetition control stay true (``+SKIP`` marks the ones that need the real model)."""

import doctest

import pytest

from bluerec.models import fetch, registry
from bluerec.profiler import config
from bluerec.profiler.backends import hf


@pytest.mark.parametrize("module", [registry, fetch, config, hf], ids=lambda m: m.__name__)
def test_docstring_examples(module):
    result = doctest.testmod(module, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0 and result.failed == 0
