"""Package discovery only (everything else is in pyproject.toml): every folder with an ``__init__.py`` under
the project root, outside tests and benchmarks, becomes ``livepuppet.<folder>``."""

from setuptools import find_packages, setup

setup(packages=["livepuppet", *(f"livepuppet.{name}" for name in find_packages(exclude=["tests*", "bench*"]))])
