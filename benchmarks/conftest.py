"""Markers for the zoo benchmarks: select a suite with -m quick / -m full."""


def pytest_configure(config):
    config.addinivalue_line("markers", "quick: case of the quick benchmark suite")
    config.addinivalue_line("markers", "full: case of the full benchmark suite")
