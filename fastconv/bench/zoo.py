"""The layer zoo: load the cases of zoo.json (shapes from real networks) and select the ones to run."""
import json
import os
from dataclasses import dataclass, field

ZOO_PATH = os.path.join(os.path.dirname(os.path.abspath(__file__)), "zoo.json")

# Every op the suite knows how to drive, in torch.nn.functional's names.
CONV_OPS = ("conv1d", "conv2d")
CONV_TRANSPOSE_OPS = ("conv_transpose1d", "conv_transpose2d")
POOL_OPS = ("max_pool1d", "max_pool2d", "avg_pool1d", "avg_pool2d", "lp_pool1d", "lp_pool2d",
            "adaptive_avg_pool1d", "adaptive_avg_pool2d", "adaptive_max_pool1d", "adaptive_max_pool2d")
UNPOOL_OPS = ("max_unpool1d", "max_unpool2d")
ALL_OPS = CONV_OPS + CONV_TRANSPOSE_OPS + POOL_OPS + UNPOOL_OPS
SUITES = ("quick", "full")


@dataclass(frozen=True)
class Case:
    name: str
    network: str
    op: str
    input: dict  # device -> shape list
    params: dict  # keyword arguments of the functional op
    suites: tuple
    layer: dict = field(default_factory=dict)  # convs: out_channels, kernel_size, bias

    @property
    def spatial_dims(self):
        return 1 if self.op.endswith("1d") else 2

    def input_shape(self, device):
        return tuple(self.input[device])


def load(path=ZOO_PATH):
    """-> list of Case, validated (unknown op or suite, duplicate name: ValueError naming the case)."""
    with open(path) as f:
        doc = json.load(f)
    cases, seen = [], set()
    for raw in doc["cases"]:
        case = Case(name=raw["name"], network=raw["network"], op=raw["op"], input=raw["input"],
                    params=raw.get("params", {}), suites=tuple(raw["suites"]), layer=raw.get("layer", {}))
        if case.op not in ALL_OPS:
            raise ValueError(f"zoo case {case.name}: unknown op {case.op!r}")
        if not set(case.suites) <= set(SUITES):
            raise ValueError(f"zoo case {case.name}: unknown suite in {case.suites}")
        if case.name in seen:
            raise ValueError(f"zoo case {case.name}: duplicate name")
        expected_rank = case.spatial_dims + 2
        for device, shape in case.input.items():
            if len(shape) != expected_rank:
                raise ValueError(f"zoo case {case.name}: {device} input shape {shape} is not {expected_rank}-d")
        seen.add(case.name)
        cases.append(case)
    return cases


def select(cases, suite="quick", ops=None, names=None, max_cases=None):
    """Cases of `suite` (or, when names are given, those cases whatever their suite), filtered by op names,
    keeping zoo order; at most max_cases. names: exact case names or prefixes ending in '*'.
    Unknown op or case names raise ValueError."""
    if suite not in SUITES:
        raise ValueError(f"--suite must be one of {', '.join(SUITES)}, got {suite!r}")
    picked = list(cases) if names else [c for c in cases if suite in c.suites]
    if ops:
        unknown = sorted(set(ops) - set(ALL_OPS))
        if unknown:
            raise ValueError(f"--ops: unknown op(s) {', '.join(unknown)}; known: {', '.join(ALL_OPS)}")
        picked = [c for c in picked if c.op in ops]
    if names:
        def matches(case, pattern):
            if pattern.endswith("*"):
                return case.name.startswith(pattern[:-1])
            return case.name == pattern
        all_names = {c.name for c in cases}
        for pattern in names:
            if not pattern.endswith("*") and pattern not in all_names:
                raise ValueError(f"--case: no zoo case named {pattern!r}")
        picked = [c for c in picked if any(matches(c, p) for p in names)]
    if max_cases is not None:
        picked = picked[:max_cases]
    return picked
