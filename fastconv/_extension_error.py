"""A plain ImportError for when fastconv._C cannot be loaded. From a source checkout where the extension was
never built, Python's own message is a confusing "cannot import name '_C' from partially initialized module
'fastconv' (most likely due to a circular import)"; an extension built against another torch fails with an
undefined symbol."""
import glob
import importlib.machinery
import os

import torch

BUILD = "pip install --no-build-isolation -e ."


def extension_error(exc):
    """-> the ImportError to raise instead of `exc`, saying whether the extension is missing or fails to load,
    and the command that builds it."""
    here = os.path.dirname(os.path.abspath(__file__))
    built = [p for suffix in importlib.machinery.EXTENSION_SUFFIXES
             for p in glob.glob(os.path.join(here, "_C" + suffix))]
    if not built:
        return ImportError(
            f"fastconv's compiled extension (fastconv._C) is not built in {here}: this is a source tree. Build it "
            f"there after installing torch, from the repository root: `{BUILD}` (or run from another directory "
            "to import an installed fastconv)")
    return ImportError(
        f"fastconv's compiled extension {built[0]} does not load ({exc}): it was probably built against another "
        f"torch than this one ({torch.__version__}). Rebuild it from the repository root: `{BUILD}`")
