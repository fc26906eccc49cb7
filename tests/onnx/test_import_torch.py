"""Files ember did not write: PyTorch's ONNX exporter (TorchScript-based, ``dynamo=False``)
on an MLP, a CNN with BatchNorm, stacked bidirectional LSTM + GRU, and an embedding +
transformer encoder; ember.onnx.load's outputs must match PyTorch's, eager and jitted, at a
batch size other than the exported one."""
import io
import warnings

import numpy as np
import pytest

import ember as em

torch = pytest.importorskip("torch")
pytest.importorskip("onnx")
import ember.onnx  # noqa: E402

nn = torch.nn


class _CNN(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, padding=1)
        self.bn = nn.BatchNorm2d(8)
        self.pool = nn.MaxPool2d(2)
        self.conv2 = nn.Conv2d(8, 4, 3, stride=2, padding=1)
        self.fc = nn.Linear(4, 5)

    def forward(self, x):
        x = self.pool(torch.relu(self.bn(self.conv(x))))
        x = nn.functional.avg_pool2d(self.conv2(x), 2, ceil_mode=True)
        return torch.log_softmax(self.fc(nn.functional.adaptive_avg_pool2d(x, 1).flatten(1)), -1)


class _Recurrent(nn.Module):
    def __init__(self):
        super().__init__()
        self.lstm = nn.LSTM(4, 6, num_layers=2, bidirectional=True, batch_first=True)
        self.gru = nn.GRU(12, 5)

    def forward(self, x, h0, c0):
        y, (h, c) = self.lstm(x, (h0, c0))
        z, hg = self.gru(y.transpose(0, 1))
        return z, h, c, hg


class _Encoder(nn.Module):
    def __init__(self):
        super().__init__()
        self.emb = nn.Embedding(11, 8)
        self.layer = nn.TransformerEncoderLayer(8, 2, 16, dropout=0.0, batch_first=True)
        self.norm = nn.LayerNorm(8)

    def forward(self, ids):
        return self.norm(nn.functional.gelu(self.layer(self.emb(ids))))


def _export(model, args, names, dynamic):
    f = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            torch.onnx.export(model, args, f, dynamo=False, opset_version=17, input_names=names,
                              dynamic_axes=dynamic)
        except (ImportError, ModuleNotFoundError) as e:  # an exporter needing onnxscript
            pytest.skip(f"torch.onnx.export unavailable here: {e}")
    return f.getvalue()


def _mlp():
    return nn.Sequential(nn.Linear(3, 16), nn.GELU(), nn.Linear(16, 16), nn.Tanh(),
                         nn.Linear(16, 2))


MODELS = {
    "mlp": (_mlp, lambda n: (torch.randn(n, 3),), ["x"], {"x": {0: "N"}}),
    "cnn": (_CNN, lambda n: (torch.randn(n, 3, 10, 10),), ["x"], {"x": {0: "N"}}),
    "recurrent": (_Recurrent, lambda n: (torch.randn(n, 5, 4), torch.randn(4, n, 6),
                                         torch.randn(4, n, 6)),
                  ["x", "h0", "c0"], {"x": {0: "N"}, "h0": {1: "N"}, "c0": {1: "N"}}),
    "encoder": (_Encoder, lambda n: (torch.randint(0, 11, (n, 7)),), ["ids"],
                {"ids": {0: "N"}}),
}


def _pairs(ref, got):
    ref = ref if isinstance(ref, tuple) else (ref,)
    got = got if isinstance(got, tuple) else (got,)
    assert len(ref) == len(got)
    return zip(ref, got)


@pytest.mark.parametrize("name", list(MODELS))
def test_torch_exported_models_match_torch(name):
    make, inputs, names, dynamic = MODELS[name]
    torch.manual_seed(0)
    model = make().eval()
    if name == "cnn":  # non-trivial running statistics
        with torch.no_grad():
            model.bn.running_mean.uniform_(-1, 1)
            model.bn.running_var.uniform_(0.5, 2)
    m = ember.onnx.load(_export(model, inputs(2), names, dynamic))
    args = inputs(3)  # another batch size than the exported one
    with torch.no_grad():
        ref = model(*args)
    got = m(*[a.numpy() for a in args])
    for r, g in _pairs(ref, got):
        np.testing.assert_allclose(g.detach().numpy(), r.numpy(), rtol=1e-4, atol=1e-5)
    fast = em.jit(m)
    with em.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("error")  # the whole graph compiles: no eager fallback
        ts = [em.tensor(a.numpy()) for a in args]
        fast(*ts)
        for r, g in _pairs(ref, fast(*ts)):
            np.testing.assert_allclose(g.numpy(), r.numpy(), rtol=1e-4, atol=1e-5)


def test_torch_parameter_names_survive_the_round_trip():
    torch.manual_seed(0)
    model = _mlp()
    m = ember.onnx.load(_export(model, (torch.randn(2, 3),), ["x"], None))
    ours = dict(m.named_parameters())
    for k, v in model.state_dict().items():
        np.testing.assert_array_equal(ours[k].detach().numpy(), v.numpy())
