"""A small progress bar on stderr (redrawn in place with '\r'; one final line per bar)."""
import sys
import time


class Progress:
    def __init__(self, total, label="", width=28, stream=None):
        self.total, self.label, self.width = max(1, total), label, width
        self.stream = stream if stream is not None else sys.stderr
        self.start = time.perf_counter()
        self.n = 0

    def update(self, n=1, info=""):
        self.n = min(self.total, self.n + n)
        filled = self.width * self.n // self.total
        bar = "#" * filled + "." * (self.width - filled)
        elapsed = time.perf_counter() - self.start
        self.stream.write(f"\r{self.label} [{bar}] {self.n}/{self.total} {elapsed:5.1f}s {info}   ")
        self.stream.flush()

    def close(self, info=""):
        self.update(0, info)
        self.stream.write("\n")
        self.stream.flush()
