"""Validates an ONNX file with the onnx package's checker (full check, which
includes strict shape inference) and prints a JSON summary for the onnx
package's tests.

Usage: python3 check.py MODEL.onnx
"""
import collections
import json
import sys

import onnx


def dims(vi):
    return [d.dim_param or d.dim_value for d in vi.type.tensor_type.shape.dim]


def main():
    m = onnx.load(sys.argv[1])
    onnx.checker.check_model(m, full_check=True)
    g = m.graph
    print(json.dumps({
        "onnx_version": onnx.__version__,
        "ir_version": m.ir_version,
        "opset": {o.domain: o.version for o in m.opset_import},
        "producer_name": m.producer_name,
        "producer_version": m.producer_version,
        "metadata": {p.key: p.value for p in m.metadata_props},
        "inputs": {v.name: dims(v) for v in g.input},
        "outputs": {v.name: dims(v) for v in g.output},
        "ops": collections.Counter(n.op_type for n in g.node),
        "initializers": len(g.initializer),
    }))


if __name__ == "__main__":
    main()
