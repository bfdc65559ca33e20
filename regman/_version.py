"""The version, in one place: read by the build (pyproject) and by ``regman --version``.

A constant rather than importlib.metadata: looking the distribution up costs
tens of milliseconds at start-up, on every ``regman --version``.
"""

__version__ = "0.1.0"
