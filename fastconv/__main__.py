"""`python -m fastconv info` prints how fastconv was built; `python -m fastconv bench ...` runs the benchmark."""
import sys


def main(argv=None):
    argv = list(sys.argv[1:] if argv is None else argv)
    cmd = argv[0] if argv else "info"
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
    print("usage: python -m fastconv [info | bench ... | demo ...]", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
