"""Demos: `python -m fastconv.demo digits [--transfer]` (or `python -m fastconv demo digits ...`)."""
