"""fastconv's version, in one place: setup.py and pyproject.toml read it without importing fastconv (whose
extension is what they build), fastconv/__init__.py re-exports it."""
__version__ = "0.1.0"
