"""Build hook for the optional C fingerprint (schemas/_fnv.c); everything else is pyproject.toml.

The extension is optional: without a C compiler Tocsin installs and runs on the pure-Python
fingerprint in schemas/alert.py, only slower.
"""

from setuptools import Extension, setup

setup(ext_modules=[Extension("schemas._fnv", ["schemas/_fnv.c"], optional=True)])
