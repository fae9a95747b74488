"""Shared test configuration: hypothesis profiles, and the BLAS thread variables kept as the
session started.

``ci`` (the default) keeps the suite fast and deterministic; ``thorough`` runs many more
examples: ``HYPOTHESIS_PROFILE=thorough python -m pytest``.
"""

import os

import pytest
from hypothesis import HealthCheck, settings

settings.register_profile(
    "ci",
    max_examples=25,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile(
    "thorough",
    max_examples=300,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


#: Variables a Dask nanny sets in the starting process (distributed's ``pre-spawn-environ``)
#: and never takes back: left set, they would look like a user's choice to
#: ``fit(threads="auto")`` in every later test.
THREAD_VARIABLES = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")


@pytest.fixture(autouse=True)
def _thread_variables_restored():
    saved = {name: os.environ.get(name) for name in THREAD_VARIABLES}
    yield
    for name, value in saved.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value
