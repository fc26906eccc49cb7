"""Process-wide switches read on every op dispatch; kept as plain module globals for speed."""

grad_enabled = True   # no_grad / enable_grad / set_grad_enabled
inference = False     # inference_mode: like no_grad, and tensors made are marked inference
anomaly = False       # autograd.detect_anomaly: record creation stacks, check backward values
anomaly_forward = False  # ... and check forward outputs too
tracer = None         # ember.jit's tracer while a trace is running; None otherwise
