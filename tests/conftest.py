"""One JAX persistent compilation cache for the whole test run, shared by the xdist workers.

Many tests compile the same small programs (the tiny MAGE trainer under the driver, the CLI, the
sweep, the checkpoints, ...); with the cache a program compiled once is loaded from disk by every
later test and by the other worker. It lives in a fresh temporary directory per `pytest` run, so
no test ever sees a program compiled by another run or another version. Set
MAGEJAX_TEST_JAX_CACHE=off to compile everything afresh.
"""
from __future__ import annotations

import os
import shutil
import tempfile

_ENV = "MAGEJAX_TEST_JAX_CACHE"
_created: list[str] = []


def pytest_configure(config):
    # The controller runs this before it starts the xdist workers, which inherit the variable.
    if _ENV not in os.environ:
        os.environ[_ENV] = tempfile.mkdtemp(prefix="magejax-test-jax-cache-")
        _created.append(os.environ[_ENV])
    if os.environ[_ENV] == "off":
        return
    import jax

    jax.config.update("jax_compilation_cache_dir", os.environ[_ENV])
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.5)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)


def pytest_unconfigure(config):
    for path in _created:  # only the process that made the cache removes it, after the workers
        shutil.rmtree(path, ignore_errors=True)
