"""Type hints on the public API (PEP 561: fastconv/py.typed ships with the package): every parameter and return
of fastconv.nn.functional, fold_batchnorm, build_info, convert / ConvertReport and the model builders is
annotated, and the hints resolve (inspect evaluates them, so a misspelt name fails here)."""
import inspect
import os
import tomllib

import pytest

import fastconv
import fastconv.nn.functional as F
from fastconv import models

PACKAGE = os.path.dirname(os.path.abspath(fastconv.__file__))
MODEL_CLASSES = ["AlexNet", "DenseNet", "DilatedContextNet", "GoogLeNet", "LeNet5", "MnistCNN", "MobileNetV2",
                 "ResNet", "SegNet", "UNet", "VGG", "WaveNet"]


def _assert_fully_hinted(fn, what):
    sig = inspect.signature(fn, eval_str=True)
    missing = [name for name, p in sig.parameters.items() if name != "self" and p.annotation is p.empty]
    assert not missing, f"{what}: no hint for {missing}"
    assert sig.return_annotation is not sig.empty, f"{what}: no return hint"


@pytest.mark.parametrize("name", F.__all__)
def test_functional_is_hinted(name):
    _assert_fully_hinted(getattr(F, name), f"fastconv.nn.functional.{name}")


@pytest.mark.parametrize("fn", [fastconv.fold_batchnorm, fastconv.build_info, models.resnet18, models.resnet50,
                                models.vgg11, models.vgg16, models.densenet121], ids=lambda f: f.__name__)
def test_functions_are_hinted(fn):
    _assert_fully_hinted(fn, fn.__name__)


def test_convert_is_hinted():
    _assert_fully_hinted(fastconv.convert, "convert")
    _assert_fully_hinted(fastconv.ConvertReport.__str__, "ConvertReport.__str__")
    hints = inspect.get_annotations(fastconv.ConvertReport, eval_str=True)
    assert hints == {"swapped": list[tuple[str, str]], "left": list[tuple[str, str, str]]}


def test_convert_hints_change_no_defaults():
    sig = inspect.signature(fastconv.convert)
    assert [(p.name, p.default) for p in sig.parameters.values()] == [
        ("model", inspect.Parameter.empty), ("inplace", True), ("strict", False)]
    assert fastconv.ConvertReport() == fastconv.ConvertReport([], [])


@pytest.mark.parametrize("name", MODEL_CLASSES)
def test_model_constructors_are_hinted(name):
    _assert_fully_hinted(getattr(models, name).__init__, f"fastconv.models.{name}")


def test_py_typed_ships_with_the_package():
    assert os.path.exists(os.path.join(PACKAGE, "py.typed"))
    with open(os.path.join(os.path.dirname(PACKAGE), "pyproject.toml"), "rb") as f:
        package_data = tomllib.load(f)["tool"]["setuptools"]["package-data"]
    assert "py.typed" in package_data["fastconv"]


def test_hints_change_no_defaults():
    """Hints only: the defaults are torch's, as before."""
    sig = inspect.signature(F.max_pool2d)
    assert [(p.name, p.default) for p in sig.parameters.values()][1:] == [
        ("kernel_size", inspect.Parameter.empty), ("stride", None), ("padding", 0), ("dilation", 1),
        ("ceil_mode", False), ("return_indices", False)]
    assert inspect.signature(models.ResNet).parameters["layers"].default is None
