"""A small progress bar on stderr: redrawn in place with '\r' on a terminal; when the stream is not a
terminal (a log file, a pipe, pytest's capture) only the final line of each bar is written."""
import sys
import time


class Progress:
    def __init__(self, total, label="", width=28, stream=None):
        self.total, self.label, self.width = max(1, total), label, width
        self.stream = stream if stream is not None else sys.stderr
        self.live = bool(getattr(self.stream, "isatty", lambda: False)())
        self.start = time.perf_counter()
        self.n = 0

    def _line(self, info):
        filled = self.width * self.n // self.total
        bar = "#" * filled + "." * (self.width - filled)
        elapsed = time.perf_counter() - self.start
        return f"{self.label} [{bar}] {self.n}/{self.total} {elapsed:5.1f}s {info}"

    def update(self, n=1, info=""):
        self.n = min(self.total, self.n + n)
        if self.live:
            self.stream.write(f"\r{self._line(info)}   ")
            self.stream.flush()

    def close(self, info=""):
        self.stream.write(("\r" if self.live else "") + self._line(info) + "   \n")
        self.stream.flush()
