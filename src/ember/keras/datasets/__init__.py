"""``keras.datasets``: the small classic datasets, read from Keras's cache folder."""
from . import fashion_mnist, mnist

__all__ = ["mnist", "fashion_mnist"]
