"""Versions of the packages a build depends on, read from their metadata (no imports)."""

from __future__ import annotations

from importlib import metadata


def package_versions(names: tuple[str, ...]) -> dict[str, str]:
    """`{name: version}` for each package (or "not installed"), plus gancc's own version."""
    versions = {}
    for name in names:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "not installed"
    from gancc import __version__
    versions["gancc"] = __version__
    return versions
