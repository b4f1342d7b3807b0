"""Build hook for the optional C hot paths; everything else is in pyproject.toml.

Both extensions are optional: without a C compiler Tocsin installs and runs on the pure-Python
versions (schemas/alert.py fingerprint, aiokafka's murmur2), only slower.
"""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension("schemas._fnv", ["schemas/_fnv.c"], optional=True),
        Extension("services.runtime._murmur2", ["services/runtime/_murmur2.c"], optional=True),
    ]
)
