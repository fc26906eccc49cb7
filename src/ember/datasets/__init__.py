"""Datasets and image transforms with torchvision's names.

- :class:`MNIST`, :class:`FashionMNIST`: read the standard IDX files from a local folder
  (torchvision's ``root/MNIST/raw`` layout works), ``download=True`` fetches them.
- :class:`Digits` and :func:`load_digits`: a real 8x8 handwritten-digits set shipped inside
  ember (UCI, CC BY 4.0), for examples that must run offline; :func:`load_digits_as_mnist`
  gives it in MNIST's 28x28 uint8 layout for scripts written against MNIST.
- :mod:`ember.datasets.transforms`: Compose, ToTensor, Normalize, RandomCrop,
  RandomHorizontalFlip, Lambda.
"""
from . import transforms  # noqa: F401
from .digits import Digits, load_digits, load_digits_as_mnist
from .mnist import MNIST, FashionMNIST, read_idx

__all__ = ["MNIST", "FashionMNIST", "Digits", "load_digits", "load_digits_as_mnist", "read_idx",
           "transforms"]
