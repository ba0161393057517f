"""The bench's and the demo's optional dependencies (pyproject.toml's extras), checked before any work starts:
a missing one used to surface as a raw ModuleNotFoundError after the whole suite had run. tqdm only draws the
progress bars, so without it they run without one (scripts/gpu_check.sh runs the bench on machines with no
network to install it), and say so once."""
import importlib
import sys

PIP_NAMES = {"sklearn": "scikit-learn"}  # import name -> what pip installs
_told = set()


def _importable(module):
    try:
        importlib.import_module(module)  # an import, not find_spec: numpy missing breaks matplotlib's import
    except ImportError:
        return False
    return True


def _install_hint(names, extra):
    return (f"`pip install {' '.join(names)}`, or fastconv's '{extra}' extra "
            f"(`pip install --no-build-isolation -e '.[{extra}]'` in a checkout)")


def missing_message(extra, modules, what):
    """-> None when every module imports, else one line for `what` (e.g. "--plot") naming what to install."""
    names = [PIP_NAMES.get(m, m) for m in modules if not _importable(m)]
    if not names:
        return None
    verb = "is" if len(names) == 1 else "are"
    return f"{what} needs {', '.join(names)}, which {verb} not installed: {_install_hint(names, extra)}"


class _NoBar:
    """The part of a tqdm bar the bench and the demo use, drawing nothing."""

    def __init__(self, iterable=None, **_):
        self.iterable = iterable

    def __iter__(self):
        return iter(self.iterable)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def set_postfix_str(self, *args, **kwargs):
        pass

    def update(self, n=1):
        pass

    def close(self):
        pass

    def write(self, s, file=None):
        print(s, file=file or sys.stderr)


def progress_bar(extra, **kwargs):
    """tqdm(**kwargs) on stderr; without tqdm a bar that draws nothing, after one line saying what to install."""
    try:
        from tqdm import tqdm
    except ImportError:
        if extra not in _told and not kwargs.get("disable"):
            _told.add(extra)
            print(f"fastconv.{extra}: no progress bar: tqdm is not installed ({_install_hint(['tqdm'], extra)})",
                  file=sys.stderr)
        return _NoBar(**kwargs)
    return tqdm(file=sys.stderr, **kwargs)
