"""FLOPs of one training step, counted analytically from the layers, and from the graph.

`train_step_flops(model, batch_size)` traces `model.compute_loss_terms` once (symbolically,
nothing is computed) with every Keras layer call recorded, and counts, per call of a weight
layer (a multiply-add is 2 FLOPs):

- `Conv2D`: 2 * B * H_out * W_out * k_h * k_w * C_in * C_out;
- `Conv2DTranspose`: 2 * B * H_in * W_in * k_h * k_w * C_in * C_out;
- `Dense`: 2 * (elements of the input / C_in) * C_in * units;
- `CrossModalAttention`: its two batched matmuls, 2 * B * N^2 * (C_key + C_value) (its four
  1x1 convs are counted as `Conv2D`).

Backward: `train_step` (models/base.py) takes two gradients from one forward pass, the
generator objective w.r.t. the generator variables (the "G pass") and the discriminator
objective w.r.t. the discriminator variables (the "D pass"). In a pass a call is
differentiated when its output depends on that pass's variables; it then costs one forward
for the weight gradient (when the layer's own variables are that pass's) and one forward for
the input gradient (when its input depends on that pass's variables). So a generator conv costs
3x forward (1x for the first conv of a generator fed a real batch), a discriminator conv on a
generated image costs 1 (forward) + 1 (G pass, input gradient) + 2 (D pass) = 4x, and on a real
image 1 + 2 = 3x (2x for its first conv). Dependence is followed through the layer calls,
starting from the batch tensors (which depend on nothing).

Not counted: normalisation, activations, element-wise ops, losses, optimizer updates (all
O(activations) or O(parameters), a few % at most): the count is what the matmul/conv roof can
be compared with.

`graph_flops(concrete_function)` is the TF profiler's statistic (the registered "flops" of each
op, as `tf.compat.v1.profiler` with `float_operation()` sums them), optionally restricted to
the ops the function actually runs: ops from which an output or a control output (variable
updates) is reachable. The unrestricted count also holds the gradient ops TF builds and then
never runs (e.g. the filter gradients of the discriminators in the G pass and the input
gradient of every first conv); that is why the profiler's total on the raw `train_step` graph
overstates a step's work (benchmarks/bench_train.py reported 111-124 % of the conv roof).
Batched matmuls are counted here with their `adj_x` flag (see `_batch_matmul_flops`).
"""

import collections
import contextlib
import dataclasses

import keras
import numpy as np
import tensorflow as tf

WEIGHT_OPS = (
    "Conv2D",
    "Conv2DBackpropInput",
    "Conv2DBackpropFilter",
    "MatMul",
    "BatchMatMul",
    "BatchMatMulV2",
    "BatchMatMulV3",
)


@dataclasses.dataclass
class LayerCall:
    """One recorded call of a weight layer."""

    path: str
    kind: str
    forward: int
    group: str | None  # "G", "D" or None (no trainable variables)
    input_depends: frozenset  # groups whose variables the input depends on
    output_depends: frozenset


@dataclasses.dataclass
class StepFlops:
    forward: int
    g_backward: int
    d_backward: int
    calls: list

    @property
    def total(self):
        return self.forward + self.g_backward + self.d_backward

    def by_kind(self):
        out = collections.Counter()
        for c in self.calls:
            out[c.kind] += c.forward
        return dict(out)


def _shape(t):
    return [int(d) for d in t.shape]


def forward_flops(layer, inputs, output):
    """Forward FLOPs of one call of `layer` (0 for layers without matmul/conv work)."""
    if isinstance(layer, keras.layers.Conv2DTranspose):
        x = _shape(inputs[0])
        k = layer.kernel.shape  # [kh, kw, C_out, C_in]
        return 2 * int(np.prod(x[:-1])) * int(k[0] * k[1] * k[2] * k[3])
    if isinstance(layer, keras.layers.Conv2D):
        y = _shape(output)
        k = layer.kernel.shape  # [kh, kw, C_in / groups, C_out]
        return 2 * int(np.prod(y[:-1])) * int(k[0] * k[1] * k[2] * k[3])
    if isinstance(layer, keras.layers.Dense):
        x = _shape(inputs[0])
        return 2 * int(np.prod(x[:-1])) * x[-1] * int(layer.units)
    from usmr_tf.layers.attention import CrossModalAttention

    if isinstance(layer, CrossModalAttention):
        b, h, w, _ = _shape(inputs[0])
        n = h * w
        return 2 * b * n * n * (int(layer.delta.filters) + int(layer.g.filters))
    return 0


def _flat_tensors(x):
    return [t for t in tf.nest.flatten(x) if isinstance(t, (tf.Tensor, tf.Variable))]


@contextlib.contextmanager
def record_layer_calls(groups):
    """Records every Keras layer call: yields the list of `LayerCall`s (weight layers only).

    `groups`: `{id(variable): "G" | "D"}`. Dependence of each tensor on the groups is tracked
    through layer calls; tensors made by plain ops inside a layer inherit what that layer's
    inputs and earlier sub-calls depend on; unknown tensors at top level depend on "G".
    """
    from keras.src.layers.layer import Layer

    depends = {}  # id(tensor) -> frozenset; tensors kept alive in `keep`
    keep = []
    stack = []  # per active call: set of groups seen so far
    calls = []
    original = Layer.__call__

    def dep(t):
        if id(t) in depends:
            return depends[id(t)]
        return frozenset(stack[-1]) if stack else frozenset({"G"})

    def own_group(layer):
        gs = {groups.get(id(v)) for v in layer.trainable_variables} - {None}
        if len(gs) > 1:
            raise ValueError(f"layer {layer.path} holds both G and D variables")
        return next(iter(gs), None)

    def patched(self, *args, **kwargs):
        inputs = args[0] if args else kwargs.get("inputs")
        in_dep = frozenset().union(*[dep(t) for t in _flat_tensors(inputs)])
        group = own_group(self)
        stack.append(set(in_dep))
        try:
            output = original(self, *args, **kwargs)
        finally:
            inner = stack.pop()
        out_dep = frozenset(inner | in_dep | ({group} if group else set()))
        if getattr(self, "stops_gradient", False):  # e.g. ImagePool
            out_dep = frozenset()
        for t in _flat_tensors(output):
            depends[id(t)] = out_dep
            keep.append(t)
        if stack:
            stack[-1] |= out_dep
        flops = forward_flops(self, _flat_tensors(inputs), output)
        if flops:
            calls.append(LayerCall(self.path, type(self).__name__, flops, group, in_dep, out_dep))
        return output

    Layer.__call__ = patched
    try:
        yield calls, depends, keep
    finally:
        Layer.__call__ = original


def _backward(call, group):
    """FLOPs of `call` in the gradient pass w.r.t. `group`'s variables."""
    if group not in call.output_depends:
        return 0
    cost = 0
    if call.kind == "CrossModalAttention":  # matmuls: one product per differentiated operand
        return 2 * call.forward if group in call.input_depends else 0
    if call.group == group:
        cost += call.forward  # weight gradient
    if group in call.input_depends:
        cost += call.forward  # input gradient
    return cost


def count_calls(calls):
    fwd = sum(c.forward for c in calls)
    g = sum(_backward(c, "G") for c in calls)
    d = sum(_backward(c, "D") for c in calls)
    return StepFlops(fwd, g, d, list(calls))


def train_step_flops(model, batch_size):
    """Analytic FLOPs of one `train_step` of a `SynthesisModel` on `batch_size` images."""
    size = model.image_size
    groups = {id(v): "D" for v in model.discriminator_variables}
    groups.update({id(v): "G" for v in model.generator_variables})
    spec = tf.TensorSpec([batch_size, size, size, 1], tf.float32)
    holder = {}

    def step(us, mr):
        with record_layer_calls(groups) as (calls, depends, keep):
            for t in (us, mr):
                depends[id(t)] = frozenset()
                keep.append(t)
            model.compute_loss_terms(us, mr, training=True)
            holder["calls"] = list(calls)
        return tf.constant(0.0)

    tf.function(step, autograph=False).get_concrete_function(spec, spec)
    return count_calls(holder["calls"])


# ----------------------------------------------------------------------------- graph count


def live_ops(graph):
    """Ops of `graph` that its outputs or control outputs (variable updates) depend on."""
    roots = [t.op for t in graph.outputs] + list(getattr(graph, "control_outputs", []))
    seen, todo = set(), list(roots)
    while todo:
        op = todo.pop()
        if op.name in seen:
            continue
        seen.add(op.name)
        todo.extend(t.op for t in op.inputs)
        todo.extend(op.control_inputs)
    return seen


def graph_flops(concrete_function, live_only=True, op_types=None):
    """`{op_type: FLOPs}` from the profiler's registered statistics over the traced graph.

    `live_only`: count only ops that run (see `live_ops`); `op_types`: restrict to these types.
    """
    from tensorflow.python.framework import ops as tf_ops

    graph = concrete_function.graph
    live = live_ops(graph) if live_only else None
    out = collections.Counter()
    for op in graph.get_operations():
        if live is not None and op.name not in live:
            continue
        if op_types is not None and op.type not in op_types:
            continue
        if op.type.startswith("BatchMatMul"):
            out[op.type] += _batch_matmul_flops(op)
            continue
        try:
            stats = tf_ops.get_stats_for_node_def(graph, op.node_def, "flops")
        except ValueError:  # incomplete shape: the profiler skips these too
            continue
        if stats and stats.value:
            out[op.type] += int(stats.value)
    return dict(out)


def _batch_matmul_flops(op):
    """2 * K * output elements. The registered statistic reads `transpose_a`, an attribute
    BatchMatMul does not have (it has `adj_x`), so it takes the wrong K for the gradient
    products `A^H . dY` and undercounts them."""
    a = op.inputs[0].shape
    k = int(a[-2] if op.get_attr("adj_x") else a[-1])
    return 2 * k * int(np.prod(op.outputs[0].shape.as_list()))


def profiler_total_flops(concrete_function):
    """`tf.compat.v1.profiler` `float_operation()` total of the whole graph (no pruning)."""
    options = tf.compat.v1.profiler.ProfileOptionBuilder.float_operation()
    options["output"] = "none"
    profile = tf.compat.v1.profiler.profile(concrete_function.graph, options=options)
    return int(profile.total_float_ops)


def traced_train_step(model, batch_size):
    """The concrete function of `model.train_step` on a `(us, mr)` batch of `batch_size`."""
    size = model.image_size
    spec = tf.TensorSpec([batch_size, size, size, 1], tf.float32)
    return tf.function(model.train_step).get_concrete_function((spec, spec))
