"""Backend interface and the Device objects that tensors carry."""
from __future__ import annotations


class Backend:
    """What ember needs from an array library beyond its NumPy-style ``xp`` namespace."""

    name: str = ""
    xp = None  # the array namespace: numpy, cupy, ...

    def to_numpy(self, a):
        """Return a NumPy array (a copy only where the memory is not host memory)."""
        raise NotImplementedError

    def from_numpy(self, a):
        """Move a NumPy array to this backend (no copy for host backends)."""
        raise NotImplementedError

    def erf(self, a):
        raise NotImplementedError

    def scatter_add(self, target, index, src, axis: int) -> None:
        """target[... index[i] along axis ...] += src[i], accumulating repeated indices."""
        raise NotImplementedError


class Device:
    """``ember.device("cpu")``. One object per device string, so identity compares devices."""

    __slots__ = ("type", "index", "backend", "xp")

    def __init__(self, type_: str, index, backend: Backend):
        self.type = type_
        self.index = index
        self.backend = backend
        self.xp = backend.xp

    def __repr__(self) -> str:
        return f"device(type='{self.type}'" + (f", index={self.index})" if self.index is not None
                                                else ")")

    def __str__(self) -> str:
        return self.type if self.index is None else f"{self.type}:{self.index}"

    def __eq__(self, other) -> bool:
        if isinstance(other, str):
            other = get_device(other)
        return isinstance(other, Device) and (self.type, self.index) == (other.type, other.index)

    def __hash__(self) -> int:
        return hash((self.type, self.index))


_backends: dict[str, Backend] = {}
_devices: dict = {}


def register(type_: str, backend: Backend) -> None:
    _backends[type_] = backend


def get_device(spec=None) -> Device:
    """Resolve ``None``, ``"cpu"``, ``"cuda:0"`` or a Device to the canonical Device object."""
    if spec is None:
        spec = "cpu"
    if isinstance(spec, Device):
        return spec
    d = _devices.get(spec)
    if d is not None:
        return d
    if not isinstance(spec, str):
        raise TypeError(f"device: expected a string like 'cpu' or a device, got {spec!r}")
    type_, _, idx = spec.partition(":")
    if type_ not in _backends:
        known = ", ".join(sorted(_backends))
        raise RuntimeError(f"device '{spec}' is not available: ember has backends for: {known}")
    index = int(idx) if idx else None
    d = Device(type_, index, _backends[type_])
    _devices[spec] = d
    return d


device = get_device
