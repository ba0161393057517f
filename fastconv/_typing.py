"""Aliases for the type hints of the public signatures (hints only: nothing checks them at run time)."""
from collections.abc import Sequence
from types import ModuleType
from typing import Optional, Union

from torch import Tensor

IntOrSeq = Union[int, Sequence[int]]  # one int for every spatial axis, or one per axis, as torch takes them
Padding = Union[int, Sequence[int], str]  # also 'same', 'valid' (and 'causal' for conv1d)
OutputSize = Union[int, None, Sequence[Optional[int]]]  # adaptive pools: None keeps that input size
MaybeIndices = Union[Tensor, tuple[Tensor, Tensor]]  # with return_indices=True: (output, indices)
LayerSource = Optional[ModuleType]  # where a model's conv and pool classes come from: fastconv.nn (None) or torch.nn
