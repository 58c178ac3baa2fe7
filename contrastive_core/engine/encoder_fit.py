"""Checking that an exported encoder's config describes its weights file, before the encoder is built.

``encoder.json`` chooses the encoder's params, and a copied or edited one (from another run's folder,
a download) can ask for anything: ``small_cnn`` widths of ``[1e6, 1e6]`` is a 36 TB convolution, and
at a few tens of GB the allocation succeeds and initialising the weights fills memory until the
kernel's OOM killer ends the process. The weights file cannot lie that way: safetensors refuses a file
whose header's tensors do not fill it exactly, so the shapes its header lists are bounded by its size,
and reading them reads no tensor data.

So :func:`build_fitting_encoder` first builds the encoder on the meta device (shapes without storage
or initialisation, no memory) and compares what it would export with the header, tensor by tensor.
Exact, whatever the model's size: a config that does not describe the weights is refused however
small, and a legitimately big model is never refused. Only then is the encoder built for real.

The construction is bounded too: while it runs, module registration hooks add up the tensors and
modules it registers and stop it once they exceed what the weights file can account for (see
:data:`BYTES_PER_ELEMENT`), so a config asking for a million layers costs no more than its weights
justify. An encoder that cannot be built on the meta device (one that reads a tensor's values while
it is built, as a third-party encoder may) is built for real instead, and then every tensor the construction
allocates is also counted, from a meta-device run of the same operation, before it is allocated.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable, Iterator
from pathlib import Path

import torch
from safetensors import safe_open
from torch.nn.modules import module as module_hooks
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten, tree_map

from ..components.encoder import Encoder
from ..errors import ContrastiveError

#: Bytes the construction may register or allocate per element of the weights file's tensors: a
#: float32 encoder registers 4, float64 8, and building one for real can allocate about 7 (the ViT's
#: truncated-normal initialisation makes temporary masks as large as the weights), so 16 leaves room without letting a
#: config ask for more than a small multiple of its weights.
BYTES_PER_ELEMENT = 16

#: Bytes allowed beyond that: parameters and buffers an encoder builds but does not export (torchvision
#: builds a ResNet's 1000-class ``fc``, 8 MB for ResNet-50, before the encoder replaces it).
SLACK_BYTES = 256 * 2**20

#: Modules the meta construction may register per tensor of the weights file, plus a fixed allowance:
#: a conv-BN-ReLU block is 3 modules for 5 tensors, a ViT block about 10 modules for 12 tensors.
MODULES_PER_TENSOR = 4
SLACK_MODULES = 2_000


class WeightsMismatchError(ValueError):
    """The encoder a config describes is not the one the weights file holds; the message says how."""


def weights_header(weights: Path) -> dict[str, tuple[int, ...]]:
    """The shape of every tensor in the safetensors file ``weights``, from its header alone.

    Raises whatever safetensors raises for a file that is not a complete safetensors file.
    """
    with safe_open(str(weights), framework="pt") as file:
        return {name: tuple(file.get_slice(name).get_shape()) for name in file.keys()}


def build_fitting_encoder(build: Callable[[], Encoder], shapes: dict[str, tuple[int, ...]]) -> Encoder:
    """The encoder ``build()`` makes, once a meta-device build of it is shown to export exactly the
    tensors ``shapes`` lists (a weights file's header).

    Raises :class:`WeightsMismatchError` before anything is allocated when it does not, or when its
    construction registers far more than the weights account for. Errors of ``build`` itself (invalid
    params) propagate unchanged.
    """
    budget = BYTES_PER_ELEMENT * sum(math.prod(shape) for shape in shapes.values()) + SLACK_BYTES
    modules = MODULES_PER_TENSOR * len(shapes) + SLACK_MODULES
    try:
        with _bounded_construction(budget, modules), torch.device("meta"):
            candidate = build()
        on_meta = True
    except (WeightsMismatchError, ContrastiveError):
        raise
    except Exception:  # noqa: BLE001 - an encoder whose construction reads tensor values (.tolist())
        with _bounded_construction(budget, modules), _BoundedAllocation(budget):
            candidate = build()
        on_meta = False
    exported = {name: tuple(tensor.shape) for name, tensor in candidate.export_state_dict().items()}
    problems = _differences(exported, shapes)
    if problems:
        raise WeightsMismatchError("; ".join(problems))
    if not on_meta:
        return candidate
    del candidate
    return build()


def _differences(expected: dict[str, tuple[int, ...]], found: dict[str, tuple[int, ...]]) -> list[str]:
    """What differs between the tensors the config's encoder exports and those of the file (a few)."""
    missing = sorted(set(expected) - set(found))
    unexpected = sorted(set(found) - set(expected))
    resized = [name for name in sorted(set(expected) & set(found)) if expected[name] != found[name]]
    problems = []
    if missing:
        problems.append(f"{len(missing)} tensors missing from the file ({_some(missing)})")
    if unexpected:
        problems.append(f"{len(unexpected)} tensors the encoder does not have ({_some(unexpected)})")
    for name in resized[:3]:
        problems.append(
            f"{name} is {list(found[name])} in the file but {list(expected[name])} in the encoder"
        )
    if len(resized) > 3:
        problems.append(f"{len(resized) - 3} more tensors of other shapes")
    return problems


def _some(names: list[str]) -> str:
    return ", ".join(names[:3]) + (", ..." if len(names) > 3 else "")


@contextlib.contextmanager
def _bounded_construction(max_bytes: int, max_modules: int) -> Iterator[None]:
    """Stop any module construction in this block (by raising :class:`WeightsMismatchError` from a
    registration hook) once the tensors it registers exceed ``max_bytes`` or its modules ``max_modules``."""
    registered = {"bytes": 0, "modules": 0}

    def count_tensor(_module: torch.nn.Module, name: str, tensor: torch.Tensor | None) -> None:
        if tensor is not None:
            registered["bytes"] += tensor.numel() * tensor.element_size()
            if registered["bytes"] > max_bytes:
                raise WeightsMismatchError(
                    f"the encoder it describes would hold over {max_bytes:,} bytes of tensors (stopped at "
                    f"{name!r}), far more than the file's tensors"
                )

    def count_module(_module: torch.nn.Module, name: str, _submodule: torch.nn.Module | None) -> None:
        registered["modules"] += 1
        if registered["modules"] > max_modules:
            raise WeightsMismatchError(
                f"the encoder it describes would have over {max_modules:,} modules (stopped at {name!r}), far "
                "more than the file's tensors account for"
            )

    handles = [
        module_hooks.register_module_parameter_registration_hook(count_tensor),
        module_hooks.register_module_buffer_registration_hook(count_tensor),
        module_hooks.register_module_module_registration_hook(count_module),
    ]
    try:
        yield
    finally:
        for handle in handles:
            handle.remove()


class _BoundedAllocation(TorchDispatchMode):
    """Raise :class:`WeightsMismatchError` before an operation whose new tensors would bring all those
    allocated in this block over ``max_bytes``. Each operation is first run on meta copies of its inputs,
    which gives its outputs' sizes without computing or allocating anything; operations without a meta
    kernel (reading a value: ``.item()``) are not counted, their outputs being scalars."""

    def __init__(self, max_bytes: int) -> None:
        super().__init__()
        self.max_bytes = max_bytes
        self.allocated = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        schema = func._schema
        # An in-place or view operation returns (a view of) an input: nothing new is allocated.
        if not any(value.alias_info is not None for value in schema.returns):
            meta_kwargs = tree_map(_on_meta, kwargs)
            if any(argument.name == "device" for argument in schema.arguments):
                meta_kwargs["device"] = torch.device("meta")
            try:
                outputs = func(*tree_map(_on_meta, args), **meta_kwargs)
            except Exception:  # noqa: BLE001 - no meta kernel: not counted
                outputs = None
            leaves = tree_flatten(outputs)[0]
            self.allocated += sum(t.numel() * t.element_size() for t in leaves if isinstance(t, torch.Tensor))
            if self.allocated > self.max_bytes:
                raise WeightsMismatchError(
                    f"the encoder it describes would allocate over {self.max_bytes:,} bytes while it is built "
                    f"(stopped before {func}), far more than the file's tensors"
                )
        return func(*args, **kwargs)


def _on_meta(value: object) -> object:
    """A tensor's stand-in on the meta device (same shape, strides and dtype); anything else as it is."""
    if isinstance(value, torch.Tensor):
        return torch.empty_strided(value.shape, value.stride(), dtype=value.dtype, device="meta")
    return value
