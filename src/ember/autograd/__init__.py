"""Automatic differentiation: the graph, the engine, grad modes, anomaly detection."""
from .anomaly import detect_anomaly, is_anomaly_enabled, set_detect_anomaly
from .engine_api import backward, grad
from .grad_mode import (enable_grad, inference_mode, is_grad_enabled, is_inference_mode_enabled,
                        no_grad, set_grad_enabled)
from .graph import Node
from . import functional
from . import function
from .function import Function

__all__ = ["backward", "grad", "no_grad", "enable_grad", "set_grad_enabled", "inference_mode",
           "is_grad_enabled", "is_inference_mode_enabled", "detect_anomaly",
           "set_detect_anomaly", "is_anomaly_enabled", "Node", "functional", "function",
           "Function"]
