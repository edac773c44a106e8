"""Build of the `edgeward` distribution.

Every `*.pyx` under `python/edgeward` is compiled when Cython is available
(the build requirements ask for it). Each compiled module has a pure-Python
twin that the package falls back to, so the build also succeeds without
Cython or a C compiler, or with ``EDGEWARD_NO_CYTHON=1``.
"""

from __future__ import annotations

import os
from pathlib import Path

from setuptools import setup
from setuptools.command.build_ext import build_ext

ROOT = Path(__file__).parent
SOURCE = ROOT / "python"


def cython_extensions() -> list:  # type: ignore[type-arg]
    if os.environ.get("EDGEWARD_NO_CYTHON"):
        return []
    try:
        from Cython.Build import cythonize
    except ImportError:
        print("edgeward: Cython not found, building the pure-Python fallback only")
        return []
    sources = sorted(str(p.relative_to(ROOT)) for p in SOURCE.rglob("*.pyx"))
    if not sources:
        return []
    try:
        # Bounds checks stay on (Cython's default): these modules parse
        # untrusted bytes. A module opts out locally where it is proven safe.
        return cythonize(sources, compiler_directives={"language_level": "3"}, quiet=True)
    except Exception as exc:  # noqa: BLE001 - a .pyx that fails to translate
        print(f"edgeward: Cython translation failed ({exc}); using pure Python")
        return []


class OptionalBuildExt(build_ext):
    """A failed C build leaves the pure-Python twins in charge instead of
    failing the install."""

    def run(self) -> None:
        try:
            super().run()
        except Exception as exc:  # noqa: BLE001 - any compiler failure
            print(f"edgeward: compiled modules skipped ({exc}); using pure Python")

    def build_extension(self, ext) -> None:  # type: ignore[no-untyped-def]
        try:
            super().build_extension(ext)
        except Exception as exc:  # noqa: BLE001
            print(f"edgeward: {ext.name} not compiled ({exc}); using its pure-Python twin")


setup(ext_modules=cython_extensions(), cmdclass={"build_ext": OptionalBuildExt})
