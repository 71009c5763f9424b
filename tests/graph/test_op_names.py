"""Op types are named once, in the op table (``coinfer.graph.ops``): other modules use the names
and the grouped sets, and the sets agree with what the table's rules do."""
import math
import re
from pathlib import Path

import pytest

import coinfer.graph
from coinfer.graph import ops, zoo
from coinfer.graph.coexec.view import view_of
from coinfer.graph.costs import sampling
from coinfer.hw.calibration import CLASSES

#: The modules that may spell an op type out: the table, ONNX import and export (which map
#: ONNX's names onto it) and the model zoo.
ALLOWED = {"ops.py", "onnx.py", "onnx_export.py", "zoo.py"}
NAMES = ("CONV", "MAXPOOL", "AVGPOOL", "GLOBALAVGPOOL", "FC", "RELU", "CLIP", "LRN", "SOFTMAX", "CONCAT", "ADD",
         "FLATTEN", "DROPOUT", "RESHAPE")


def test_every_op_type_has_a_name():
    assert {getattr(ops, n) for n in NAMES} == set(ops.OP_TYPES)
    assert all(getattr(ops, n) == n.lower() for n in NAMES)


def test_no_op_type_literal_outside_the_table_onnx_and_zoo():
    """``git grep '"lrn"' graph`` lists only the allowed modules (either quote)."""
    literal = re.compile(r"""(["'])(%s)\1""" % "|".join(re.escape(t) for t in ops.OP_TYPES))
    root = Path(coinfer.graph.__file__).parent
    found = []
    for path in sorted(root.rglob("*.py")):
        if path.parent == root and path.name in ALLOWED:
            continue
        for i, line in enumerate(path.read_text().splitlines(), 1):
            if literal.search(line):
                found.append(f"{path.relative_to(root)}:{i}: {line.strip()}")
    assert not found, "op-type literals outside ops/onnx/onnx_export/zoo:\n" + "\n".join(found)


def test_families_are_the_hardware_models_op_classes():
    assert set(ops.FAMILIES) == set(CLASSES) - {"transform"}
    assert {s.family for s in ops.SPECS.values()} == set(ops.FAMILIES) - {ops.FAMILY_DEPTHWISE}


@pytest.mark.parametrize("groups, c, oc, want", [(1, 8, 8, ops.FAMILY_CONV), (8, 8, 8, ops.FAMILY_DEPTHWISE),
                                                 (8, 8, 16, ops.FAMILY_CONV), (2, 8, 8, ops.FAMILY_CONV)])
def test_cost_family_of_a_conv(groups, c, oc, want):
    assert ops.cost_family(ops.CONV, groups=groups, in_channels=c, out_channels=oc) == want


def test_grouped_sets_agree_with_the_table_on_every_zoo_op():
    assert ops.POOLS | ops.ELEMENTWISE | ops.MOVEMENT | ops.WEIGHTED <= set(ops.OP_TYPES)
    assert ops.WINDOWED == ops.POOLS | {ops.CONV}
    seen = set()
    for name in zoo.names():
        g = zoo.build(name, weights=False)
        for op in g.ops:
            seen.add(op.type)
            n_out = math.prod(g.shape(op.output))
            assert (op.type in ops.WEIGHTED) == ("w" in op.params), op.name
            assert (op.type in ops.POOLS) == ("kernel" in op.attrs), op.name
            if op.type in ops.MOVEMENT:
                assert g.flops(op) == 0, op.name
            if op.type in ops.ELEMENTWISE:
                assert g.flops(op) == n_out, op.name


def test_a_description_counts_flops_by_the_tables_rule():
    """``sampling.flops`` of an op's description equals the graph's FLOPs of the op: one rule."""
    for name in zoo.names():
        g = zoo.build(name, weights=False)
        for op, view in zip(g.ops, view_of(g).ops):
            assert sampling.flops(sampling.describe(view)) == g.flops(op), (name, op.name)
