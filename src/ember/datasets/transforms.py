"""Image transforms with torchvision's names: Compose, ToTensor, Normalize, RandomCrop,
RandomHorizontalFlip, Lambda.

Layouts follow torchvision: a NumPy array is an image as PIL would give it, ``(H, W)`` or
``(H, W, C)`` (channels last, uint8 in 0..255); an ember Tensor is ``(..., C, H, W)``
(channels first). ``ToTensor`` turns the first into the second, so
``Compose([RandomCrop(28, padding=4), ToTensor(), Normalize((0.1307,), (0.3081,))])`` reads
as it does with torchvision. The random transforms draw from ember's default generator, so
``ember.manual_seed`` makes them reproducible, and DataLoader workers (each seeded
differently) augment differently.
"""
from __future__ import annotations

import numbers
from typing import Callable, Sequence

import numpy as np

from .. import dtypes as _dt
from ..tensor import Tensor

__all__ = ["Compose", "ToTensor", "Normalize", "RandomCrop", "RandomHorizontalFlip", "Lambda"]


def _is_pil(img) -> bool:
    return type(img).__module__.startswith("PIL.")


def _as_image_array(name: str, img) -> np.ndarray:
    """A NumPy view of a channels-last image (array or PIL image)."""
    if _is_pil(img):
        return np.asarray(img)
    if isinstance(img, np.ndarray):
        return img
    raise TypeError(f"{name}: expected an ember Tensor (..., C, H, W), a NumPy image "
                    f"(H, W[, C]) or a PIL image, got {type(img).__name__}")


class Compose:
    """Apply transforms one after another."""

    def __init__(self, transforms: Sequence[Callable]) -> None:
        self.transforms = list(transforms)

    def __call__(self, img):
        for t in self.transforms:
            img = t(img)
        return img

    def __repr__(self) -> str:
        body = "".join(f"\n    {t}" for t in self.transforms)
        return f"{type(self).__name__}({body}\n)"


class ToTensor:
    """A channels-last image (NumPy ``(H, W[, C])`` or PIL) -> a ``(C, H, W)`` tensor.

    uint8 images are scaled to float32 in [0, 1]; other dtypes keep their values and dtype
    (as torchvision does). An ember Tensor is assumed to be ``(C, H, W)`` already and passes
    through unchanged (torchvision raises there).
    """

    def __call__(self, pic) -> Tensor:
        if isinstance(pic, Tensor):
            return pic
        if _is_pil(pic) and getattr(pic, "mode", None) == "1":
            arr = 255 * np.asarray(pic, dtype=np.uint8)
        else:
            arr = _as_image_array("ToTensor", pic)
        if arr.ndim == 2:
            arr = arr[:, :, None]
        if arr.ndim != 3:
            raise ValueError(f"ToTensor: pic should be 2/3 dimensional (H, W[, C]). Got "
                             f"{arr.ndim} dimensions (shape {arr.shape}).")
        chw = np.ascontiguousarray(arr.transpose(2, 0, 1))
        if chw.dtype == np.uint8:
            d = _dt.get_default_dtype().np
            return Tensor._wrap(chw.astype(d) / d.type(255))
        if chw.dtype not in _dt._FROM_NP:
            raise TypeError(f"ToTensor: image dtype {chw.dtype} has no ember dtype")
        return Tensor._wrap(chw)

    def __repr__(self) -> str:
        return "ToTensor()"


class Normalize:
    """``(x - mean[c]) / std[c]`` per channel, for a float ``(..., C, H, W)`` tensor (or a
    float channels-last NumPy image)."""

    def __init__(self, mean: Sequence[float], std: Sequence[float], inplace: bool = False):
        self.mean = mean
        self.std = std
        self.inplace = inplace

    def __call__(self, img):
        is_tensor = isinstance(img, Tensor)
        arr = img._data if is_tensor else _as_image_array("Normalize", img)
        if arr.dtype.kind != "f" and arr.dtype != _dt._BF16:
            raise TypeError(f"Normalize: input should be a float tensor. Got "
                            f"{_dt._FROM_NP.get(arr.dtype, arr.dtype)}; use ToTensor() first")
        if is_tensor and arr.ndim < 3:
            raise ValueError(f"Normalize: expected tensor to be a tensor image of size "
                             f"(..., C, H, W). Got tensor.size() = {tuple(arr.shape)}")
        mean = np.asarray(self.mean, dtype=arr.dtype).reshape(-1)
        std = np.asarray(self.std, dtype=arr.dtype).reshape(-1)
        if np.any(std == 0):
            raise ValueError(f"Normalize: std evaluated to zero after conversion to "
                             f"{arr.dtype}, leading to division by zero.")
        channels = arr.shape[-3] if is_tensor else (arr.shape[-1] if arr.ndim == 3 else 1)
        for name, v in (("mean", mean), ("std", std)):
            if v.size not in (1, channels):
                raise ValueError(f"Normalize: {name} has {v.size} values but the image has "
                                 f"{channels} channels (shape {tuple(arr.shape)})")
        if is_tensor:
            mean, std = mean.reshape(-1, 1, 1), std.reshape(-1, 1, 1)
        if self.inplace:
            arr -= mean
            arr /= std
            return img
        out = (arr - mean) / std
        return Tensor._wrap(out, img._dev) if is_tensor else out

    def __repr__(self) -> str:
        return f"{type(self).__name__}(mean={self.mean}, std={self.std})"


def _hw_axes(img) -> tuple:
    """The (height, width) axes of an image in ember's layout rules."""
    if isinstance(img, Tensor):
        if img.ndim < 2:
            raise ValueError(f"expected an image tensor (..., H, W), got shape "
                             f"{tuple(img.shape)}")
        return img.ndim - 2, img.ndim - 1
    return 0, 1


def _pad(arr: np.ndarray, hw: tuple, left, top, right, bottom, fill, mode) -> np.ndarray:
    widths = [(0, 0)] * arr.ndim
    widths[hw[0]] = (top, bottom)
    widths[hw[1]] = (left, right)
    if mode == "constant":
        return np.pad(arr, widths, mode="constant", constant_values=fill)
    return np.pad(arr, widths, mode=mode)


def _setup_size(size, name: str) -> tuple:
    if isinstance(size, numbers.Number):
        return int(size), int(size)
    if isinstance(size, Sequence) and len(size) == 1:
        return int(size[0]), int(size[0])
    if not isinstance(size, Sequence) or len(size) != 2:
        raise ValueError(f"{name}: please provide only two dimensions (h, w) for size, got "
                         f"{size!r}")
    return int(size[0]), int(size[1])


class RandomCrop:
    """Crop a random ``size`` window, after optional ``padding``.

    ``padding``: an int (all sides), ``(left/right, top/bottom)`` or
    ``(left, top, right, bottom)``; ``padding_mode``: "constant" (with ``fill``), "edge",
    "reflect" or "symmetric"; ``pad_if_needed`` pads an image smaller than ``size``.
    """

    _MODES = ("constant", "edge", "reflect", "symmetric")

    def __init__(self, size, padding=None, pad_if_needed: bool = False, fill=0,
                 padding_mode: str = "constant") -> None:
        self.size = _setup_size(size, "RandomCrop")
        if padding is not None:
            if isinstance(padding, numbers.Number):
                padding = (int(padding),) * 4
            elif isinstance(padding, Sequence) and len(padding) in (1, 2, 4):
                p = [int(v) for v in padding]
                padding = tuple(p * 4 if len(p) == 1 else
                                (p[0], p[1], p[0], p[1]) if len(p) == 2 else p)
            else:
                raise ValueError(f"RandomCrop: padding must be an int or a 1, 2 or 4 element "
                                 f"sequence, got {padding!r}")
        if padding_mode not in self._MODES:
            raise ValueError(f"RandomCrop: padding_mode should be one of {self._MODES}, got "
                             f"{padding_mode!r}")
        if not isinstance(fill, numbers.Number):
            raise TypeError(f"RandomCrop: fill should be a number, got {fill!r}")
        self.padding = padding
        self.pad_if_needed = pad_if_needed
        self.fill = fill
        self.padding_mode = padding_mode

    @staticmethod
    def get_params(img, output_size: tuple) -> tuple:
        """Random ``(top, left, height, width)`` of a crop of ``output_size``."""
        from ..ops.random import randint
        hw = _hw_axes(img)
        shape = img.shape
        h, w = shape[hw[0]], shape[hw[1]]
        th, tw = output_size
        if h < th or w < tw:
            raise ValueError(f"RandomCrop: required crop size {(th, tw)} is larger than input "
                             f"image size {(h, w)}")
        if h == th and w == tw:
            return 0, 0, h, w
        i = int(randint(0, h - th + 1, (1,)).item())
        j = int(randint(0, w - tw + 1, (1,)).item())
        return i, j, th, tw

    def __call__(self, img):
        is_tensor = isinstance(img, Tensor)
        arr = img._data if is_tensor else _as_image_array("RandomCrop", img)
        hw = _hw_axes(img)
        if self.padding is not None:
            arr = _pad(arr, hw, *self.padding, self.fill, self.padding_mode)
        th, tw = self.size
        if self.pad_if_needed and arr.shape[hw[1]] < tw:
            d = tw - arr.shape[hw[1]]
            arr = _pad(arr, hw, d, 0, d, 0, self.fill, self.padding_mode)
        if self.pad_if_needed and arr.shape[hw[0]] < th:
            d = th - arr.shape[hw[0]]
            arr = _pad(arr, hw, 0, d, 0, d, self.fill, self.padding_mode)
        i, j, h, w = self.get_params(Tensor._wrap(arr) if is_tensor else arr, self.size)
        index = [slice(None)] * arr.ndim
        index[hw[0]] = slice(i, i + h)
        index[hw[1]] = slice(j, j + w)
        out = np.ascontiguousarray(arr[tuple(index)])
        return Tensor._wrap(out, img._dev) if is_tensor else out

    def __repr__(self) -> str:
        return f"{type(self).__name__}(size={self.size}, padding={self.padding})"


class RandomHorizontalFlip:
    """Mirror the image left-right with probability ``p``."""

    def __init__(self, p: float = 0.5) -> None:
        self.p = p

    def __call__(self, img):
        from ..ops.random import rand
        if not float(rand(1).item()) < self.p:
            return img
        if isinstance(img, Tensor):
            return Tensor._wrap(np.ascontiguousarray(np.flip(img._data, -1)), img._dev)
        return np.ascontiguousarray(np.flip(_as_image_array("RandomHorizontalFlip", img), 1))

    def __repr__(self) -> str:
        return f"{type(self).__name__}(p={self.p})"


class Lambda:
    """Wrap a function as a transform: ``Lambda(lambda x: x.flatten())``."""

    def __init__(self, lambd: Callable) -> None:
        if not callable(lambd):
            raise TypeError(f"Argument lambd should be callable, got "
                            f"{type(lambd).__name__!r}")
        self.lambd = lambd

    def __call__(self, img):
        return self.lambd(img)

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"
