"""Where the units of every layer look in the input, traced through the torch operations of one
forward pass: branches (residual additions, concatenations, downsample shortcuts) and operations
written as functions in `forward` (F.avg_pool2d, F.pad, x + y) count exactly as modules do.

Every tensor computed from the input carries, per axis (rows, columns), the field of its
positions: position i sees input pixels start + i·jump … start + i·jump + size − 1. Convolution
and pooling (kernel k, stride s, padding p, dilation d) map a field to

    size + d·(k−1)·jump,    jump·s,    start − p·jump

pointwise operations keep it, and operations that combine tensors position by position (x + y,
torch.cat along channels) take the smallest box that holds each of their fields (these must
share the jump). Operations that mix all positions (global pooling, linear layers, flattening,
normalising over positions) leave no finite field, and so does any operation not known here:
a receptive field is exact or refused with the reason, never guessed.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import torch
from torch import nn
from torch.overrides import TorchFunctionMode

from netscope.guard import eval_mode, forward, model_device
from netscope.inspect.hooks import StopPass


@dataclass(frozen=True)
class Field:
    """The input box of position (0, 0) of a map, and how far it moves per position (per axis)."""

    size: tuple[int, int] = (1, 1)
    jump: tuple[int, int] = (1, 1)
    start: tuple[int, int] = (0, 0)
    edge: bool = False  # the input was padded by repeating its border pixels

    def window(self, kernel, stride, padding, dilation) -> Field:
        """Returns the field after a convolution or pooling window (per-axis pairs)."""
        return Field(
            tuple(
                z + d * (k - 1) * j for z, k, d, j in zip(self.size, kernel, dilation, self.jump)
            ),
            tuple(j * s for j, s in zip(self.jump, stride)),
            tuple(a - p * j for a, p, j in zip(self.start, padding, self.jump)),
            self.edge,
        )

    def reaches_in(self, positions: Sequence[int], image: Sequence[int]) -> bool:
        """Returns whether the box of every one of `positions` (per axis) overlaps an image of
        size `image`: then a repeated border pixel a box holds outside the image is in it too."""
        ends = zip(self.start, self.size, self.jump, positions, image)
        return all(a + z > 0 and a + (n - 1) * j < h for a, z, j, n, h in ends)

    def union(self, other: Field) -> Field | str:
        """Returns the smallest field holding both, or why there is none (different jumps)."""
        if other.jump != self.jump:
            return f"branches with different strides (jumps {self.jump} and {other.jump}) meet"
        start = tuple(map(min, self.start, other.start))
        ends = zip(self.start, self.size, other.start, other.size)
        end = tuple(max(a + z, b + y) for a, z, b, y in ends)
        sizes = tuple(e - a for e, a in zip(end, start))
        return Field(sizes, self.jump, start, self.edge or other.edge)


State = Field | str  # a field, or the reason a tensor has no finite one


def pair(value) -> tuple[int, int]:
    return tuple(value) if isinstance(value, (tuple, list)) else (value, value)


def bind(args: tuple, kwargs: dict, names: Sequence[str], defaults: dict) -> dict:
    """Returns a call's arguments by parameter name (positional ones in `names` order)."""
    return {**defaults, **dict(zip(names, args)), **kwargs}


def spatial(tensor: torch.Tensor) -> tuple[int, ...] | None:
    return tuple(tensor.shape[-2:]) if tensor.dim() == 4 else None


def union(sources: list, out: torch.Tensor, name: str) -> State:
    """Returns the union of the sources' fields when each maps onto `out` position by position."""
    if spatial(out) is None or any(spatial(t) != spatial(out) for t, _ in sources):
        shapes = ", ".join(str(tuple(t.shape)) for t, _ in sources)
        return f"`{name}` maps tensors of shape {shapes} to {tuple(out.shape)}, not position by position"
    field = sources[0][1]
    for _, other in sources[1:]:
        field = field.union(other)
        if isinstance(field, str):
            return f"{field} in `{name}`"
    return field


def conv(name, args, kwargs, sources, out) -> State:
    names = ("input", "weight", "bias", "stride", "padding", "dilation")
    call = bind(args, kwargs, names, dict(stride=1, padding=0, dilation=1))
    if len(sources) != 1 or sources[0][0] is not call["input"]:
        return f"`{name}` computes its kernel from the input"
    if name == "convolution" and (args[6] if len(args) > 6 else kwargs.get("transposed")):
        return "a transposed convolution spreads each position over several outputs"
    kernel, dilation = tuple(call["weight"].shape[2:]), pair(call["dilation"])
    padding = call["padding"]
    if padding == "same":  # PyTorch pads the extra pixel of an even total on the far side
        padding = tuple(d * (k - 1) // 2 for k, d in zip(kernel, dilation))
    padding = (0, 0) if padding == "valid" else pair(padding)
    return sources[0][1].window(kernel, pair(call["stride"]), padding, dilation)


POOL_ARGUMENTS = {
    "max": ("input", "kernel_size", "stride", "padding", "dilation"),
    "avg": ("input", "kernel_size", "stride", "padding"),
    "lp_": ("input", "norm_type", "kernel_size", "stride"),
}


def pool(name, args, kwargs, sources, out) -> State:
    names = POOL_ARGUMENTS[name.lstrip("_")[:3]]
    call = bind(args, kwargs, names, dict(stride=None, padding=0, dilation=1))
    kernel = pair(call["kernel_size"])
    stride = pair(call["stride"]) if call["stride"] not in (None, [], ()) else kernel
    padding, dilation = pair(call["padding"]), pair(call["dilation"])
    return sources[0][1].window(kernel, stride, padding, dilation)


def adaptive_pool(name, args, kwargs, sources, out) -> State:
    field, windows = sources[0][1], []
    for n, o in zip(sources[0][0].shape[-2:], out.shape[-2:]):
        if o == 1 and n > 1:
            return f"`{name}` to 1×1 pools over all positions (global pooling)"
        if n % o:
            return f"`{name}` from {n} to {o} positions uses windows of different sizes"
        windows.append(n // o)
    return field.window(windows, windows, (0, 0), (1, 1))


def pad(name, args, kwargs, sources, out) -> State:
    call = bind(args, kwargs, ("input", "pad", "mode"), dict(mode="constant"))
    widths, field = (list(call["pad"]) + [0, 0, 0, 0])[:4], sources[0][1]
    padded = field.window((1, 1), (1, 1), (widths[2], widths[0]), (1, 1))  # columns come first
    if not any(widths) or call["mode"] == "constant":
        return padded
    if call["mode"] == "replicate" and field == Field():  # of the image itself
        return dataclasses.replace(padded, edge=True)
    return f"{call['mode']} padding of a feature map brings positions in from inside the map"


def along(dim_at: int, default: int = 0, dims: tuple[int, ...] = (0, 1)) -> Callable:
    """Returns the rule of an operation along the dimension given as argument `dim_at` (split,
    join, softmax): the field is kept when that is one of `dims` of an N×C×H×W map."""

    def rule(name, args, kwargs, sources, out) -> State:
        dim = args[dim_at] if len(args) > dim_at else kwargs.get("dim", default)
        dim = default if dim is None else dim
        if not isinstance(dim, int) or out.dim() != 4 or dim % 4 not in dims:
            return f"`{name}` along dimension {dim} of an N×C×H×W map mixes or moves positions"
        return union(sources, out, name)

    return rule


def same_map(name, args, kwargs, sources, out) -> State:
    """Views, copies and selections that keep every position where it was."""
    index = args[1] if name == "getitem" and len(args) > 1 else None
    parts = index if isinstance(index, tuple) else (index,)
    if any(isinstance(part, (torch.Tensor, list, bool)) for part in parts):
        return "indexing with a tensor or list reorders positions"
    source = sources[0][0]
    if spatial(out) is None or out.shape[0] != source.shape[0] or spatial(out) != spatial(source):
        return f"`{name}` turns the map into shape {tuple(out.shape)} (no longer rows × columns)"
    return union(sources, out, name)


def reduction(name, args, kwargs, sources, out) -> State:
    if spatial(out) is not None and all(spatial(t) == spatial(out) for t, _ in sources):
        return union(sources, out, name)  # over channels, or position by position (max(x, y))
    return f"`{name}` reduces over positions"


def batch_norm(name, args, kwargs, sources, out) -> State:
    call = bind(
        args, kwargs, ("input", "running_mean", "running_var", "weight", "bias", "training"), {}
    )
    if call.get("training"):
        return "batch_norm with batch statistics mixes all positions (track_running_stats=False)"
    return union(sources, out, name)


def mixes(reason: str) -> Callable:
    def rule(name, args, kwargs, sources, out) -> State:
        return f"`{name}` {reason}"

    return rule


def pointwise(name, args, kwargs, sources, out) -> State:
    return union(sources, out, name)


POINTWISE = """relu relu6 leaky_relu elu selu celu gelu silu mish hardtanh hardswish hardsigmoid
sigmoid tanh softplus softsign logsigmoid tanhshrink threshold prelu rrelu dropout dropout2d
alpha_dropout feature_alpha_dropout abs neg positive exp log log1p expm1 sqrt rsqrt square pow
clamp clamp_min clamp_max clip sign sin cos erf reciprocal round floor ceil nan_to_num add sub
rsub mul div truediv true_divide maximum minimum fmax fmin where addcmul addcdiv lerp masked_fill
local_response_norm copy""".split()
SAME_MAP = """getitem view reshape view_as reshape_as flatten unflatten squeeze unsqueeze expand
expand_as contiguous clone detach to float double half bfloat16 type type_as cpu cuda
requires_grad""".split()
REDUCTIONS = "mean sum amax amin max min std var norm logsumexp prod median".split()
SPLITS = {
    "cat": 1,
    "concat": 1,
    "concatenate": 1,
    "narrow": 1,
    "select": 1,
    "index_select": 1,
    "chunk": 2,
    "split": 2,
    "split_with_sizes": 2,
    "tensor_split": 2,
    "unbind": 1,
}
RULES: dict[str, Callable] = {
    **dict.fromkeys(POINTWISE, pointwise),
    **dict.fromkeys(SAME_MAP, same_map),
    **dict.fromkeys(REDUCTIONS, reduction),
    **{name: along(at) for name, at in SPLITS.items()},
    **dict.fromkeys(["conv2d", "convolution", "_convolution"], conv),
    **dict.fromkeys(["max_pool2d", "_max_pool2d", "max_pool2d_with_indices"], pool),
    **dict.fromkeys(["avg_pool2d", "lp_pool2d"], pool),
    **dict.fromkeys(
        ["adaptive_avg_pool2d", "adaptive_max_pool2d", "_adaptive_max_pool2d"], adaptive_pool
    ),
    **dict.fromkeys(["adaptive_max_pool2d_with_indices"], adaptive_pool),
    **dict.fromkeys(["pad", "constant_pad_nd"], pad),
    **dict.fromkeys(["softmax", "log_softmax", "softmin"], along(1, default=1, dims=(1,))),
    "normalize": along(2, default=1, dims=(1,)),
    "batch_norm": batch_norm,
    **dict.fromkeys(
        ["instance_norm", "group_norm", "layer_norm"], mixes("normalises over positions")
    ),
    **dict.fromkeys(
        ["linear", "matmul", "mm", "bmm", "einsum", "bilinear", "addmm"],
        mixes("mixes all positions (a linear layer)"),
    ),
}
CONSTANT_LIKE = set(
    "zeros_like ones_like empty_like full_like rand_like randn_like new_zeros "
    "new_ones new_empty new_full new_tensor size dim numel".split()
)
OPERATORS = set("add sub mul truediv floordiv div pow matmul mod and or xor".split())


def op_name(func) -> str:
    """Returns the plain name of a torch function: "__iadd__", "add_" and "add" are all "add"."""
    name = getattr(func, "__name__", str(func))
    if name.startswith("__") and name.endswith("__"):
        core = name[2:-2]
        return core[1:] if core[:1] in ("i", "r") and core[1:] in OPERATORS else core
    return name[:-1] if name.endswith("_") and not name.startswith("_") else name


def tensors_in(args: tuple, kwargs: dict) -> Iterator[torch.Tensor]:
    for value in (*args, *kwargs.values()):
        if isinstance(value, torch.Tensor):
            yield value
        elif isinstance(value, (list, tuple)):
            yield from (v for v in value if isinstance(v, torch.Tensor))


class FieldTracer(TorchFunctionMode):
    """Runs torch functions as usual and records the field of every tensor they compute from a
    tensor that has one (keyed by identity; the tensors are kept alive for the trace)."""

    def __init__(self):
        super().__init__()
        self.states: dict[int, tuple[torch.Tensor, State]] = {}

    def state(self, tensor: torch.Tensor) -> State | None:
        entry = self.states.get(id(tensor))
        return entry[1] if entry is not None and entry[0] is tensor else None

    def set(self, tensor: torch.Tensor, state: State) -> None:
        self.states[id(tensor)] = (tensor, state)

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        sources = [(t, s) for t in tensors_in(args, kwargs) if (s := self.state(t)) is not None]
        out = func(*args, **kwargs)
        name = op_name(func)
        if not sources or name in CONSTANT_LIKE:
            return out
        if name == "setitem" and any(t is not args[0] for t, _ in sources):
            self.set(args[0], "an indexed assignment (x[...] = y) moves positions")
        for tensor in out if isinstance(out, (tuple, list)) else (out,):
            if isinstance(tensor, torch.Tensor):
                self.set(tensor, moved(name, args, kwargs, sources, tensor))
                in_place = name not in SAME_MAP and any(tensor is t for t, _ in sources)
                if in_place and tensor._base is not None and self.state(tensor._base):
                    self.set(tensor._base, "an in-place write into a view of the map")
        return out


def moved(name: str, args, kwargs, sources: list, out: torch.Tensor) -> State:
    """Returns the field of `out`, computed by torch function `name` from `sources`."""
    reason = next((s for _, s in sources if isinstance(s, str)), None)
    if reason is not None:
        return reason
    rule = RULES.get(name)
    if rule is None:
        return f"it is computed by `{name}`, an operation netscope does not map positions through"
    return rule(name, args, kwargs, sources, out)


def trace_fields(
    model: nn.Module, image_shape: Sequence[int], until: str | None = None
) -> dict[str, tuple[State | None, tuple[int, ...]]]:
    """Returns, for each call of each layer in one forward pass on a blank image (eval mode, no
    gradients), the field of its output (or why it has none) and the output's shape; layers are
    named by `named_modules()`, later calls "name#1", "name#2", ... The pass ends after layer
    `until` when given (so images of another size work for the convolutional part)."""
    tracer, calls, counts = FieldTracer(), {}, {}

    def hook_for(name: str):
        def hook(_module, _inputs, output):
            call = counts.get(name, 0)
            counts[name] = call + 1
            is_tensor = isinstance(output, torch.Tensor)
            state = tracer.state(output) if is_tensor else None
            key = name if call == 0 else f"{name}#{call}"
            calls[key] = (state, tuple(output.shape) if is_tensor else ())
            if key == until:
                raise StopPass

        return hook

    modules = list(model.named_modules())[1:]
    handles = [module.register_forward_hook(hook_for(name)) for name, module in modules]
    device = model_device(model)
    image = torch.zeros(1, *image_shape, device=device)
    tracer.set(image, Field())
    try:
        with eval_mode(model), torch.no_grad(), tracer:
            forward(model, image)
    except StopPass:
        pass
    finally:
        for handle in handles:
            handle.remove()
    return calls
