"""Backend ``executorch-xnnpack-cpu``: each module exported with ``torch.export``, lowered with the
XNNPACK partitioner to an ExecuTorch program (``.pte``) and run by ExecuTorch's own runtime, the
runtime Android and iOS apps embed, here on the node's CPU. Timed against the yardstick, itself an
ExecuTorch program (raynas/hardware/timing.py).

Threads: XNNPACK runs on ExecuTorch's process-wide thread pool, sized to the machine's cores at
start. Its size is set through ``_unsafe_reset_threadpool``, which is *not* public ExecuTorch API
(the pybindings expose no other way); if a release removes it, measurement refuses rather than time
with the wrong thread count. A program keeps the pool it was loaded with, so programs are loaded after
the reset and dropped before the next measurement (one at a different count would use a freed pool).
Needs ``pip install 'raynas[executorch]'`` on the target's nodes.
"""

from __future__ import annotations

import functools
import operator
import warnings
from pathlib import Path

import torch

from raynas.hardware.backend import Backend, HardwareUnavailable, Modules, SideBySide, register_backend, yardstick
from raynas.hardware.timing import Latencies, paired_latency_ms

SUFFIX = ".pte"
MODEL_FILE = "model.pte"  # what an ExecuTorch target ships


def _runtime():
    try:
        from executorch.runtime import Runtime
    except ImportError:
        raise HardwareUnavailable("this target needs ExecuTorch on its node: pip install 'raynas[executorch]'") from None
    return Runtime.get()


_POOL: list[int] = []  # the size this process last set: ExecuTorch logs a line at every reset


def set_threads(threads: int) -> None:
    """Size ExecuTorch's thread pool (not public API; see the module docstring), once per size per process."""
    if _POOL == [threads]:
        return
    _runtime()
    try:
        from executorch.extension.pybindings.portable_lib import _unsafe_reset_threadpool
    except ImportError:
        raise HardwareUnavailable("this ExecuTorch build cannot size its thread pool (_unsafe_reset_threadpool is gone)") from None
    _unsafe_reset_threadpool(threads)
    _POOL[:] = [threads]


def lower(module: torch.nn.Module, shape: tuple[int, ...]) -> bytes:
    """``module`` at input ``shape`` as an ExecuTorch program with every op XNNPACK supports delegated to it."""
    _runtime()
    from executorch.backends.xnnpack.partition.xnnpack_partitioner import XnnpackPartitioner
    from executorch.exir import to_edge_transform_and_lower

    program = torch.export.export(module.eval(), (torch.randn(shape),))
    return to_edge_transform_and_lower(program, partitioner=[XnnpackPartitioner()]).to_executorch().buffer


def lower_each(modules: list[tuple[torch.nn.Module, tuple[int, ...]]]) -> list[bytes]:
    """Each module at its shape as its own program, as ``lower`` makes it, from one export and one
    lowering of all of them side by side: lowering's fixed cost (about a second a call here) is paid
    once. Every module becomes its own XNNPACK delegate (``_per_module``), whose standalone program is
    cut out; a module that is not exactly one delegate (an identity, an op XNNPACK leaves out) is
    lowered alone, and so is every module when the joint lowering fails."""
    try:
        alone = _lowered_together(modules)
    except Exception:  # noqa: BLE001  the joint path is an optimization: each module alone is the reference path
        alone = {}
    with warnings.catch_warnings():  # ExecuTorch's own standalone-program path calls its deprecated MemoryPlanningPass.call
        warnings.filterwarnings("ignore", "MemoryPlanningPass.call", FutureWarning)
        return [_cut(alone[i]) if i in alone else lower(*modules[i]) for i in range(len(modules))]


def _lowered_together(modules: list[tuple[torch.nn.Module, tuple[int, ...]]]) -> dict[int, object]:
    _runtime()
    from executorch.backends.xnnpack.partition.xnnpack_partitioner import XnnpackPartitioner
    from executorch.exir import to_edge_transform_and_lower

    args = tuple(torch.randn(shape) for _, shape in modules)
    program = torch.export.export(SideBySide([m for m, _ in modules]).eval(), args)
    return _delegates(to_edge_transform_and_lower(program, partitioner=[_per_module()(XnnpackPartitioner())]).exported_program())


def _cut(delegate) -> bytes:
    """The delegate as a program of its own, laid out as ``to_executorch`` lays out ``lower``'s."""
    return delegate.buffer(extract_delegate_segments=True)


def _delegates(program) -> dict[int, object]:
    """Input index -> its delegate, for the inputs whose output is exactly one delegate's only output,
    a delegate that reads that input and nothing else (its own weights and buffers aside)."""
    from executorch.exir.delegate import executorch_call_delegate
    from torch.export.graph_signature import InputKind

    graph = program.graph_module
    inputs = {name: i for i, name in enumerate(program.graph_signature.user_inputs)}
    outputs = next(n for n in graph.graph.nodes if n.op == "output").args[0]
    found = {}
    for i, out in enumerate(outputs):
        call = out.args[0] if out.op == "call_function" and out.target is operator.getitem else None
        if call is None or call.target is not executorch_call_delegate or len(call.users) != 1:
            continue
        lowered, *read = call.args
        delegate = getattr(graph, lowered.target)
        specs = delegate.original_module.graph_signature.input_specs
        if len(read) == 1 and inputs.get(read[0].name) == i and [s.kind for s in specs].count(InputKind.USER_INPUT) == 1:
            if all(s.kind in (InputKind.USER_INPUT, InputKind.PARAMETER, InputKind.BUFFER) for s in specs):
                found[i] = delegate
    return found


def _module_of(program) -> dict:
    """Node -> index of the input it is computed from (the modules side by side share no node);
    weights and buffers go with the op that reads them."""
    inputs = set(program.graph_signature.user_inputs)
    owner, order = {}, list(program.graph.nodes)
    for i, node in enumerate(n for n in order if n.op == "placeholder" and n.name in inputs):
        stack = [node]
        while stack:
            for user in stack.pop().users:
                if user not in owner:
                    owner[user] = i
                    stack.append(user)
    for node in order:
        if node.op == "placeholder" and node not in owner:
            mine = {owner[u] for u in node.users if u in owner}
            if len(mine) == 1:
                owner[node] = mine.pop()
    return owner


@functools.cache
def _per_module():
    """A partitioner class that tags as the one it wraps, with one delegate per module instead of one
    for all (defined on first use: ExecuTorch is optional)."""
    from executorch.exir.backend.partitioner import Partitioner, PartitionResult

    class PerModule(Partitioner):
        def __init__(self, inner) -> None:
            super().__init__()
            self.inner = inner

        def ops_to_not_decompose(self, program):
            return self.inner.ops_to_not_decompose(program)

        def partition(self, program) -> PartitionResult:
            result = self.inner.partition(program)
            tagged = result.tagged_exported_program
            owner, tags = _module_of(tagged), {}
            for node in tagged.graph.nodes:
                tag = node.meta.get("delegation_tag")
                if tag is None:
                    continue
                if node in owner:
                    node.meta["delegation_tag"] = f"{tag}-module{owner[node]}"
                tags[node.meta["delegation_tag"]] = result.partition_tags[tag]
            return PartitionResult(tagged_exported_program=tagged, partition_tags=tags)

    return PerModule


def export(module: torch.nn.Module, shape: tuple[int, ...], path: Path) -> Path:
    """Write the lowered program to ``path`` (the file an ExecuTorch target ships)."""
    path.write_bytes(lower(module, shape))
    return path


class Loaded:
    """A loaded program and its ``forward`` method, kept together: the method points into the program
    (and the program into its buffer), so letting either go while the method runs crashes the process."""

    def __init__(self, program: bytes | Path) -> None:
        self.buffer = program if isinstance(program, bytes) else Path(program).read_bytes()
        self.program = _runtime().load_program(self.buffer)
        self.method = self.program.load_method("forward")

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return self.method.execute([x.contiguous()])[0]


def measure_executorch_ms(
    modules: Modules, threads: int, *, warmup: int = 10, repeats: int = 60, rounds: int = 10, yardstick_ms: float | None = None
) -> Latencies:
    """Latency in ms of each module run by ExecuTorch with XNNPACK on ``threads`` threads, on a random
    input of its shape, timed against the yardstick run the same way; each module's program comes
    back with it (``Latencies.files``): for a whole network, what was timed is what ships. All are
    lowered together and split (``lower_each``)."""
    set_threads(threads)
    keys = list(modules)
    *lowered, ruler = lower_each([modules[k] for k in keys] + [(yardstick(), BACKEND.yardstick_shape)])
    programs = dict(zip(keys, lowered))
    calls = {key: functools.partial(Loaded(programs[key]), torch.randn(shape)) for key, (_, shape) in modules.items()}
    reference = functools.partial(Loaded(ruler), torch.randn(BACKEND.yardstick_shape))
    ms = paired_latency_ms(calls, reference, warmup=warmup, repeats=repeats, rounds=rounds, yardstick_ms=yardstick_ms)
    ms.files = {key: (MODEL_FILE, program) for key, program in programs.items()}
    return ms


# As for ONNX Runtime, a 14 px yardstick is mostly per-call overhead; 56 px puts compute first.
BACKEND = register_backend(
    Backend("executorch-xnnpack-cpu", measure_executorch_ms, lambda threads: {"num_cpus": threads}, yardstick_size=56)
)
