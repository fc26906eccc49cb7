"""The ``ember`` command. ``ember demo`` runs ember's main job; ``ember export``,
``ember inspect``, ``ember quantize`` and ``ember summary`` deploy models (ONNX files,
int8 quantisation, saved-model summaries)."""
from __future__ import annotations

import argparse
import sys
import time


def demo(args) -> int:
    """Tensors, broadcasting and autograd: fit a small polynomial regression by gradient
    descent, then check one gradient against a finite difference."""
    import ember as em

    em.manual_seed(0)
    print(f"ember {em.__version__} — tensors and automatic differentiation on NumPy\n")
    x = em.linspace(-2, 2, 200).unsqueeze(1)                     # (200, 1)
    true_w = em.tensor([[0.5], [-1.0], [2.0]])                   # y = 0.5 - x + 2x^2
    feats = em.cat([x ** 0, x, x ** 2], dim=1)                   # (200, 3)
    y = feats @ true_w + 0.1 * em.randn(200, 1)
    w = em.zeros(3, 1, requires_grad=True)
    print("fitting y = w0 + w1*x + w2*x^2 by gradient descent")
    t0 = time.perf_counter()
    for step in range(args.steps):
        loss = ((feats @ w - y) ** 2).mean()
        loss.backward()
        with em.no_grad():
            w -= 0.05 * w.grad
        w.grad = None
        if step % max(args.steps // 5, 1) == 0 or step == args.steps - 1:
            print(f"  step {step:4d}  loss {loss.item():.5f}")
    dt = time.perf_counter() - t0
    print(f"learned w = {[round(v, 3) for v in w.detach().reshape(-1).tolist()]}  "
          f"(true {true_w.reshape(-1).tolist()}) in {dt * 1e3:.0f} ms")

    # the gradient of a composite expression against a central finite difference
    a = em.tensor([0.3, -1.2, 2.0], dtype=em.float64, requires_grad=True)
    f = lambda t: (t.tanh() * t.exp()).sum() + em.logsumexp(t, 0)
    (g,) = em.autograd.grad(f(a), a)
    eps = 1e-6
    fd = []
    for i in range(3):
        e = em.zeros(3, dtype=em.float64)
        e[i] = eps
        fd.append(((f(a.detach() + e) - f(a.detach() - e)) / (2 * eps)).item())
    print(f"autograd  d/da = {[round(v, 6) for v in g.tolist()]}")
    print(f"finite-difference = {[round(v, 6) for v in fd]}")
    second = em.grad(em.grad(lambda t: (t ** 3).sum()))(em.tensor(2.0))
    print(f"second derivative of x^3 at 2 = {second.item():.1f} (expected 12.0)")
    if args.epochs:
        _train_digits(em, args.epochs)
    return 0


def _train_digits(em, epochs: int) -> None:
    """A small convnet on the handwritten digits bundled with ember, Keras style: progress
    bar and per-epoch metrics, test accuracy, learning curves, a saved model, and (with the
    onnx extra) an ONNX export checked by ember's NumPy-only runtime."""
    import numpy as np

    from ember import keras
    from ember.datasets import load_digits
    from ember.keras import layers

    (x_train, y_train), (x_test, y_test) = load_digits()
    x_train, x_test = x_train[..., None], x_test[..., None]      # channels last, as Keras
    print(f"\ntraining a convnet on real handwritten digits (8x8 pixels, {len(x_train)} train "
          f"/ {len(x_test)} test images) with ember.keras")
    keras.utils.set_random_seed(0)
    model = keras.Sequential([
        keras.Input(shape=(8, 8, 1)),
        layers.Conv2D(32, 3, padding="same", activation="relu"),
        layers.Conv2D(64, 3, padding="same", activation="relu"),
        layers.MaxPooling2D(2),
        layers.Flatten(),
        layers.Dropout(0.25),
        layers.Dense(128, activation="relu"),
        layers.Dense(10, activation="softmax"),
    ], name="digits_convnet")
    model.summary()
    model.compile(optimizer=keras.optimizers.Adam(2e-3), loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    t0 = time.perf_counter()
    history = model.fit(x_train, y_train, batch_size=64, epochs=epochs, validation_split=0.1,
                        callbacks=[keras.callbacks.ReduceLROnPlateau(patience=2)])
    loss, acc = model.evaluate(x_test, y_test, verbose=0)
    print(f"test accuracy {100 * acc:.1f}%  (test loss {loss:.4f}; trained in "
          f"{time.perf_counter() - t0:.1f} s)")
    path = "ember-demo-digits.keras"
    model.save(path)
    print(f"saved the model to {path} (JSON config + safetensors weights, no pickle)")
    _plot_curves(history.history, "ember-demo-curves.png")
    try:
        import onnx  # noqa: F401
    except ImportError:
        print("ONNX export skipped: pip install 'ember[onnx]' to export the model")
        return
    from ember import runtime
    em.onnx.export(model, em.from_numpy(x_test[:1]), "ember-demo-digits.onnx",
                   input_names=["image"], output_names=["probs"],
                   dynamic_axes={"image": {0: "batch"}, "probs": {0: "batch"}})
    session = runtime.load("ember-demo-digits.onnx")
    (probs,) = session.run(None, {"image": x_test})
    same = float(np.abs(probs - model.predict(x_test, verbose=0)).max())
    print(f"exported ember-demo-digits.onnx; ember.runtime (NumPy only) reproduces the "
          f"predictions of all {len(x_test)} test images (max difference {same:.1e}), "
          f"accuracy {100 * (probs.argmax(1) == y_test).mean():.1f}%")


def _plot_curves(history: dict, path: str) -> None:
    try:
        import matplotlib
    except ImportError:
        print("learning-curve plot skipped: pip install 'ember[plot]' to draw it")
        return
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.5))
    for ax, key in zip(axes, ("loss", "accuracy")):
        epochs = range(1, len(history[key]) + 1)
        ax.plot(epochs, history[key], marker="o", label="train")
        if "val_" + key in history:
            ax.plot(epochs, history["val_" + key], marker="o", label="validation")
        ax.set_xlabel("epoch")
        ax.set_title(key)
        ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    print(f"saved the learning curves to {path}")


# ----- deployment: export, inspect, quantize, summary --------------------------------------

_ONNX_TYPE_NAMES = {1: "float32", 2: "uint8", 3: "int8", 4: "uint16", 5: "int16", 6: "int32",
                    7: "int64", 8: "string", 9: "bool", 10: "float16", 11: "float64",
                    12: "uint32", 13: "uint64", 16: "bfloat16"}
_ONNX_ITEMSIZE = {1: 4, 2: 1, 3: 1, 4: 2, 5: 2, 6: 4, 7: 8, 9: 1, 10: 2, 11: 8, 12: 4, 13: 8,
                  16: 2}


class CLIError(Exception):
    """A user error: printed as one line, exit status 2."""


def _is_keras_file(path: str) -> bool:
    return path.endswith((".keras", ".ember"))


def _load_source(source: str, weights: str | None):
    """An ember Module from ``model.keras`` / ``model.ember`` (ember.keras) or
    ``package.module:factory`` / ``path/to/file.py:factory`` (a class or function called
    with no arguments; ``weights``: a state_dict file to load into it)."""
    import importlib
    import importlib.util
    import os
    if _is_keras_file(source):
        if not os.path.exists(source):
            raise CLIError(f"no such file: {source}")
        try:
            from ember.keras.models import load_model
        except ImportError as e:
            raise CLIError(f"{source} is an ember.keras model but ember.keras can't be "
                           f"imported ({e})") from None
        model = load_model(source, compile=False)
    else:
        mod_name, sep, attr = source.rpartition(":")
        if not sep or not mod_name or not attr:
            raise CLIError(f"don't know how to load {source!r}: give a .keras/.ember file or "
                           f"MODULE:FACTORY (e.g. mypkg.models:Net or models.py:build)")
        if mod_name.endswith(".py"):
            if not os.path.exists(mod_name):
                raise CLIError(f"no such file: {mod_name}")
            spec = importlib.util.spec_from_file_location("_ember_cli_model", mod_name)
            module = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(module)
        else:
            try:
                module = importlib.import_module(mod_name)
            except ImportError as e:
                raise CLIError(f"can't import module {mod_name!r}: {e}") from None
        factory = getattr(module, attr, None)
        if factory is None:
            raise CLIError(f"module {mod_name!r} has no attribute {attr!r}")
        model = factory() if callable(factory) else factory
    from ember.nn import Module
    if not isinstance(model, Module):
        raise CLIError(f"{source} gave a {type(model).__name__}, not an ember Module")
    if weights:
        import ember as em
        model.load_state_dict(em.load(weights))
    return model.eval()


def _parse_shape(text: str) -> tuple:
    try:
        shape = tuple(int(s) for s in text.replace("x", ",").split(",") if s.strip())
    except ValueError:
        raise CLIError(f"--input-shape {text!r}: expected comma-separated sizes such as "
                       f"1,3,32,32") from None
    if not shape or any(n <= 0 for n in shape):
        raise CLIError(f"--input-shape {text!r}: sizes must be positive")
    return shape


def _example_inputs(model, shapes, dtype: str) -> list:
    """Example tensors for tracing: from --input-shape, else from a Keras model's inputs (an
    unknown batch size becomes 1)."""
    import numpy as np

    import ember as em
    if not shapes:
        ins = getattr(model, "inputs", None) or []
        for t in ins:
            dims = list(getattr(t, "shape", ()))
            if dims and dims[0] is None:
                dims[0] = 1
            if any(d is None for d in dims):
                raise CLIError(f"the model's input {getattr(t, 'name', '')!r} has unknown "
                               f"sizes {tuple(getattr(t, 'shape', ()))}; give --input-shape")
            shapes.append(tuple(dims))
        if not shapes:
            raise CLIError("give the input size with --input-shape (e.g. --input-shape "
                           "1,1,8,8); repeat it for several inputs")
    rng = np.random.default_rng(0)
    return [em.tensor(rng.standard_normal(s).astype(dtype)) for s in shapes]


def _export_model(model, examples, dynamic_batch: bool, opset, path=None):
    """Export ``model`` (to ``path``, or only in memory); returns (ModelProto, input names,
    output names)."""
    import ember as em
    import ember.onnx as eonnx
    with em.no_grad():
        out = model(*examples)
    n_out = len(out) if isinstance(out, (tuple, list)) else 1
    in_names = ["input"] if len(examples) == 1 else [f"input_{i}" for i in
                                                      range(len(examples))]
    out_names = ["output"] if n_out == 1 else [f"output_{i}" for i in range(n_out)]
    axes = None
    if dynamic_batch:
        axes = {n: {0: "batch"} for n in in_names + out_names}
    args = examples[0] if len(examples) == 1 else tuple(examples)
    proto = eonnx.export(model, args, path, input_names=in_names, output_names=out_names,
                         dynamic_axes=axes, opset_version=opset)
    return proto, in_names, out_names


def _outputs_of(model, examples) -> list:
    import ember as em
    with em.no_grad():
        out = model(*examples)
    outs = out if isinstance(out, (tuple, list)) else (out,)
    return [o.numpy() for o in outs]


def _max_rel_diff(a_list, b_list) -> float:
    import numpy as np
    worst = 0.0
    for a, b in zip(a_list, b_list):
        scale = max(float(np.abs(a).max()) if a.size else 0.0, 1e-6)
        worst = max(worst, float(np.abs(a.astype(np.float64) - b).max()) / scale
                    if a.size else 0.0)
    return worst


def export_cmd(args) -> int:
    """ember export SOURCE -o OUT.onnx"""
    import os

    import numpy as np

    import ember as em
    model = _load_source(args.source, args.weights)
    examples = _example_inputs(model, [_parse_shape(s) for s in args.input_shape or []],
                               args.input_dtype)
    dynamic = not args.static_batch
    proto, in_names, out_names = _export_model(model, examples, dynamic, args.opset,
                                               args.output)
    print(f"exported {args.source} -> {args.output} ({_size(os.path.getsize(args.output))}, "
          f"{len(proto.graph.node)} nodes, opset "
          f"{next(o.version for o in proto.opset_import if o.domain in ('', 'ai.onnx'))})")
    if args.verify:
        from ember import runtime
        sess = runtime.load(args.output)
        batches = [examples]
        if dynamic:
            rng = np.random.default_rng(1)
            batches.append([em.tensor(rng.standard_normal((3,) + tuple(t.shape[1:]))
                                      .astype(args.input_dtype)) for t in examples])
        for ex in batches:
            want = _outputs_of(model, ex)
            got = sess.run(None, dict(zip(in_names, [t.numpy() for t in ex])))
            diff = _max_rel_diff(want, got)
            print(f"verified with ember.runtime on batch {ex[0].shape[0]}: max relative "
                  f"difference {diff:.2e}")
            if diff > 1e-4:
                print("error: the exported file computes something else than the model",
                      file=sys.stderr)
                return 1
    return 0


def _size(n: int) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n} B"


def describe_onnx(path: str) -> dict:
    """What ``ember inspect`` shows about an ONNX file, read with NumPy only."""
    import math
    import os
    from collections import Counter

    from ember.runtime._proto import parse_model
    with open(path, "rb") as f:
        data = f.read()
    m = parse_model(data)
    g = m.graph
    init_names = {t.name for t in g.initializer}

    def value(vi):
        tt = vi.type.tensor_type if vi.type is not None else None
        dims = None
        if tt is not None and tt.shape is not None:
            dims = [d.dim_value if d.dim_value else (d.dim_param or "?") for d in tt.shape.dim]
        return {"name": vi.name,
                "dtype": _ONNX_TYPE_NAMES.get(tt.elem_type, str(tt.elem_type)) if tt else "?",
                "shape": dims}

    params = 0
    by_dtype: Counter = Counter()
    for t in g.initializer:
        n = math.prod(int(d) for d in t.dims)
        params += n
        by_dtype[_ONNX_TYPE_NAMES.get(t.data_type, str(t.data_type))] += \
            n * _ONNX_ITEMSIZE.get(t.data_type, 0)
    ops = Counter((f"{n.domain}." if n.domain not in ("", "ai.onnx") else "") + n.op_type
                  for n in g.node)
    return {"file": path, "size_bytes": os.path.getsize(path), "ir_version": m.ir_version,
            "producer": f"{m.producer_name} {m.producer_version}".strip(),
            "opsets": {(o.domain or "ai.onnx"): o.version for o in m.opset_import},
            "graph": g.name,
            "inputs": [value(v) for v in g.input if v.name not in init_names],
            "outputs": [value(v) for v in g.output],
            "nodes": len(g.node), "op_counts": dict(ops.most_common()),
            "initializers": len(g.initializer), "parameters": params,
            "parameter_bytes": dict(by_dtype)}


def _print_description(d: dict) -> None:
    def shape(v):
        return "[" + ", ".join(str(s) for s in v["shape"]) + "]" if v["shape"] is not None \
            else "(unknown shape)"
    opsets = ", ".join(f"{k} {v}" for k, v in d["opsets"].items())
    print(f"{d['file']}: {_size(d['size_bytes'])}, ONNX IR {d['ir_version']}, opset {opsets}")
    if d["producer"]:
        print(f"producer: {d['producer']}")
    if d["graph"]:
        print(f"graph: {d['graph']}")
    print("inputs:")
    for v in d["inputs"]:
        print(f"  {v['name']}: {v['dtype']} {shape(v)}")
    print("outputs:")
    for v in d["outputs"]:
        print(f"  {v['name']}: {v['dtype']} {shape(v)}")
    nbytes = ", ".join(f"{k} {_size(v)}" for k, v in d["parameter_bytes"].items())
    print(f"parameters: {d['parameters']:,} in {d['initializers']} initializers"
          + (f" ({nbytes})" if nbytes else ""))
    print(f"nodes: {d['nodes']}")
    width = max((len(k) for k in d["op_counts"]), default=0)
    for op, n in d["op_counts"].items():
        print(f"  {op:<{width}}  {n}")


def inspect_cmd(args) -> int:
    """ember inspect FILE.onnx"""
    import json
    import os
    if not os.path.exists(args.file):
        raise CLIError(f"no such file: {args.file}")
    from ember.runtime._proto import DecodeError
    try:
        d = describe_onnx(args.file)
    except DecodeError as e:
        raise CLIError(f"{args.file}: {e}") from None
    if args.json:
        print(json.dumps(d, indent=2))
    else:
        _print_description(d)
    return 0


def _calibration_batches(path: str, input_names: list, batch: int):
    """Batches of ``{input name: array}`` from an .npz (arrays named after the inputs, or one
    array for a one-input model) or a .npy file; the first axis indexes samples."""
    import numpy as np
    if path.endswith(".npy"):
        arrays = {input_names[0]: np.load(path, allow_pickle=False)}
    else:
        with np.load(path, allow_pickle=False) as z:
            files = {k: z[k] for k in z.files}
        if all(n in files for n in input_names):
            arrays = {n: files[n] for n in input_names}
        elif len(input_names) == 1 and len(files) == 1:
            arrays = {input_names[0]: next(iter(files.values()))}
        else:
            raise CLIError(f"--calibration {path}: expected arrays named {input_names}, found "
                           f"{sorted(files)}")
    n = min(len(a) for a in arrays.values())
    if n == 0:
        raise CLIError(f"--calibration {path}: no samples")
    return [{k: np.ascontiguousarray(a[i:i + batch]) for k, a in arrays.items()}
            for i in range(0, n, batch)]


def quantize_cmd(args) -> int:
    """ember quantize IN -o OUT.onnx"""
    import os

    import numpy as np
    try:
        import onnx
    except ImportError:
        raise CLIError("ember quantize writes ONNX files with the 'onnx' package: "
                       "pip install ember[onnx]") from None
    from ember.quantize import observers
    from ember.quantize.onnx_model import quantize_onnx
    src = args.source
    if src.endswith(".onnx"):
        if not os.path.exists(src):
            raise CLIError(f"no such file: {src}")
        model = onnx.load(src)
        float_size = os.path.getsize(src)
    else:
        module = _load_source(src, args.weights)
        examples = _example_inputs(module, [_parse_shape(s) for s in args.input_shape or []],
                                   "float32")
        model, _, _ = _export_model(module, examples, True, args.opset)
        float_size = len(model.SerializeToString())
    init_names = {t.name for t in model.graph.initializer}
    inputs = [vi.name for vi in model.graph.input if vi.name not in init_names]
    calib = None
    if args.mode == "static":
        if not args.calibration:
            raise CLIError("--mode static needs --calibration FILE.npz (sample inputs)")
        calib = _calibration_batches(args.calibration, inputs, args.calibration_batch)
    obs = {"minmax": observers.MinMaxObserver, "histogram": observers.HistogramObserver,
           "percentile": observers.PercentileObserver,
           "moving_average": observers.MovingAverageMinMaxObserver}[args.observer]
    try:
        q = quantize_onnx(model, args.mode, calib, observer=obs)
    except ValueError as e:
        raise CLIError(str(e)) from None
    data = q.SerializeToString()
    from .serialization import write_atomic
    write_atomic(args.output, data)
    print(f"quantised {src} ({args.mode} int8) -> {args.output}: {_size(float_size)} -> "
          f"{_size(len(data))} ({float_size / len(data):.2f}x smaller)")
    # how far int8 moved the outputs, on the calibration data or a random input
    from ember import runtime
    f32, i8 = runtime.load(model.SerializeToString()), runtime.load(data)
    if calib:
        feed = calib[0]
    else:
        rng = np.random.default_rng(0)
        feed = {}
        for a in f32.get_inputs():
            if any(not isinstance(d, int) for d in (a.shape or [None])[1:]):
                return 0  # unknown sizes: nothing to try it on
            feed[a.name] = rng.standard_normal([1] + list(a.shape[1:])).astype(np.float32)
    diff = _max_rel_diff(f32.run(None, feed), i8.run(None, feed))
    print(f"max relative output change float32 -> int8: {diff:.2e}")
    return 0


def summary_cmd(args) -> int:
    """ember summary FILE"""
    import os
    if not os.path.exists(args.file):
        raise CLIError(f"no such file: {args.file}")
    if args.file.endswith(".onnx"):
        _print_description(describe_onnx(args.file))
        return 0
    try:
        from ember.keras.saving import summary_of_file
    except ImportError as e:
        raise CLIError(f"ember summary needs ember.keras to read {args.file} ({e})") from None
    print(summary_of_file(args.file))
    return 0


def _add_source_args(p) -> None:
    p.add_argument("--weights", help="state_dict file (ember.save) to load into a "
                   "MODULE:FACTORY model")
    p.add_argument("--input-shape", action="append", metavar="N,C,H,W",
                   help="example input size (repeat for several inputs); read from the model "
                   "for .keras files")
    p.add_argument("--opset", type=int, default=None, help="ONNX opset (default: ember's)")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="ember", description="ember deep learning framework")
    sub = parser.add_subparsers(dest="command")
    p = sub.add_parser("demo", help="run ember's demo (the README's main job)")
    p.add_argument("--steps", type=int, default=300)
    p.add_argument("--epochs", type=int, default=8, help="CNN training epochs (0 to skip)")
    p.set_defaults(func=demo)

    p = sub.add_parser("export", help="export a model to ONNX",
                       description="Export an ember model to an ONNX file and check the file "
                       "with ember.runtime. SOURCE: model.keras / model.ember (ember.keras), "
                       "or MODULE:FACTORY (mypkg.models:Net, models.py:build_model), called "
                       "with no arguments.")
    p.add_argument("source")
    p.add_argument("-o", "--output", required=True, help="the .onnx file to write")
    _add_source_args(p)
    p.add_argument("--input-dtype", default="float32")
    p.add_argument("--static-batch", action="store_true",
                   help="fix the batch size (default: axis 0 of inputs and outputs is dynamic)")
    p.add_argument("--no-verify", dest="verify", action="store_false",
                   help="skip running the file with ember.runtime")
    p.set_defaults(func=export_cmd)

    p = sub.add_parser("inspect", help="show an ONNX file's inputs, outputs, ops, parameters")
    p.add_argument("file")
    p.add_argument("--json", action="store_true", help="print the description as JSON")
    p.set_defaults(func=inspect_cmd)

    p = sub.add_parser("quantize", help="int8-quantise a model into an ONNX file",
                       description="Quantise the MatMul/Gemm/Conv weights of an ONNX file (or "
                       "of a model SOURCE as for 'ember export') to int8 per channel.")
    p.add_argument("source")
    p.add_argument("-o", "--output", required=True, help="the .onnx file to write")
    p.add_argument("--mode", choices=("dynamic", "static"), default="dynamic")
    p.add_argument("--calibration", help="static mode: sample inputs (.npz named after the "
                   "inputs, or .npy), first axis = samples")
    p.add_argument("--calibration-batch", type=int, default=32)
    p.add_argument("--observer", default="minmax",
                   choices=("minmax", "histogram", "percentile", "moving_average"))
    _add_source_args(p)
    p.set_defaults(func=quantize_cmd)

    p = sub.add_parser("summary", help="print the summary of a saved model (.keras/.onnx)")
    p.add_argument("file")
    p.set_defaults(func=summary_cmd)

    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 0
    try:
        return args.func(args)
    except CLIError as e:
        print(f"ember {args.command}: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
