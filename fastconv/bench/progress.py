"""A small progress bar on stderr (no dependency): redrawn in place on a terminal, one line per step otherwise."""
import sys
import time


class Progress:
    def __init__(self, total, width=28, stream=None):
        self.total, self.width = max(1, total), width
        self.stream = stream or sys.stderr
        self.tty = hasattr(self.stream, "isatty") and self.stream.isatty()
        self.done, self.t0 = 0, time.perf_counter()

    def _line(self, label):
        frac = self.done / self.total
        filled = int(round(frac * self.width))
        elapsed = time.perf_counter() - self.t0
        eta = elapsed / self.done * (self.total - self.done) if self.done else 0.0
        bar = "#" * filled + "-" * (self.width - filled)
        return f"[{bar}] {self.done}/{self.total} {elapsed:5.0f}s eta {eta:4.0f}s  {label}"

    def start(self, label):
        """Show what is running now (before step() counts it done)."""
        if self.tty:
            self.stream.write("\r\033[K" + self._line(label)[:160])
            self.stream.flush()

    def step(self, label=""):
        self.done += 1
        if self.tty:
            self.stream.write("\r\033[K" + self._line(label)[:160])
        else:
            self.stream.write(self._line(label) + "\n")
        self.stream.flush()

    def close(self):
        if self.tty:
            self.stream.write("\n")
            self.stream.flush()
