"""Build the native tokenizer (src/alblake/_albtok.c) with the package.

It is a plain C shared library (no Python API), loaded with ctypes by alblake.native; building it as an
Extension only borrows setuptools' compiler handling. It is optional: without a C compiler the package still
installs and parses with the slower Arrow CSV engine (the test suite fails then, so CI cannot miss it).
Everything else about the package is in pyproject.toml.
"""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "alblake._albtok",
            sources=["src/alblake/_albtok.c"],
            extra_compile_args=["-O3", "-std=c99", "-Wall", "-Wextra", "-fno-fast-math"],
            optional=True,
        )
    ]
)
