"""`python -m fastconv info` prints how fastconv was built; `python -m fastconv bench ...` runs the benchmark."""
import sys

from ._version import __version__

USAGE = "usage: python -m fastconv [-h] [--version] [info | bench ... | demo ...]"
HELP = f"""{USAGE}

commands:
  info       how fastconv was built: versions, SIMD level, OpenMP, threads, CUDA (the default)
  bench      fastconv against torch on the layers of classic CNNs (python -m fastconv bench --help)
  demo       LeNet-5 on scikit-learn's digits, fastconv and torch layers (python -m fastconv demo --help)

options:
  -h, --help  show this message and exit
  --version   print fastconv's version and exit"""


def main(argv=None):
    argv = list(sys.argv[1:] if argv is None else argv)
    cmd = argv[0] if argv else "info"
    if cmd in ("-h", "--help"):
        print(HELP)
        return 0
    if cmd == "--version":
        print(f"fastconv {__version__}")
        return 0
    if cmd == "info":
        from ._info import format_info

        print(format_info())
        return 0
    if cmd == "bench":
        from .bench.__main__ import main as bench_main

        return bench_main(argv[1:])
    if cmd == "demo":
        from .demo.__main__ import main as demo_main

        return demo_main(argv[1:])
    print(f"{USAGE}\npython -m fastconv: unknown command {cmd!r} (--help lists them)", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
