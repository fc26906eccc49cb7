"""nn.Module: registration, traversal, state_dict rules, modes, hooks, dtype moves, repr."""
import copy

import numpy as np
import pytest

import ember as em
import ember.nn as nn


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(4, 3)
        self.act = nn.ReLU()
        self.block = nn.Sequential(nn.Linear(3, 3), nn.Dropout(0.5))
        self.scale = nn.Parameter(em.ones(1))
        self.register_buffer("steps", em.zeros((), dtype=em.int64))
        self.register_buffer("cache", em.zeros(2), persistent=False)

    def forward(self, x):
        return self.block(self.act(self.fc1(x))) * self.scale


def test_registration_and_state_dict_keys_follow_attribute_paths():
    net = Net()
    assert list(net.state_dict()) == ["scale", "steps", "fc1.weight", "fc1.bias",
                                      "block.0.weight", "block.0.bias"]
    assert [n for n, _ in net.named_parameters()] == ["scale", "fc1.weight", "fc1.bias",
                                                      "block.0.weight", "block.0.bias"]
    assert [n for n, _ in net.named_buffers()] == ["steps", "cache"]
    assert [n for n, _ in net.named_modules()] == ["", "fc1", "act", "block", "block.0",
                                                   "block.1"]
    assert [n for n, _ in net.named_children()] == ["fc1", "act", "block"]
    assert net.fc1.weight.shape == (3, 4)


def test_shared_parameters_are_counted_once():
    lin = nn.Linear(2, 2)
    seq = nn.Sequential(lin, lin)
    assert len(list(seq.parameters())) == 2


def test_load_state_dict_copies_values_and_reports_errors():
    a, b = Net(), Net()
    b.load_state_dict(a.state_dict())
    for (k, va), (_, vb) in zip(a.state_dict().items(), b.state_dict().items()):
        np.testing.assert_array_equal(va.numpy(), vb.numpy(), err_msg=k)
    sd = a.state_dict()
    sd.pop("fc1.bias")
    sd["extra"] = em.zeros(1)
    with pytest.raises(RuntimeError) as info:
        b.load_state_dict(sd)
    msg = str(info.value)
    assert 'Missing key(s) in state_dict: "fc1.bias"' in msg
    assert 'Unexpected key(s) in state_dict: "extra"' in msg
    missing, unexpected = b.load_state_dict(sd, strict=False)
    assert missing == ["fc1.bias"] and unexpected == ["extra"]
    sd = a.state_dict()
    sd["fc1.weight"] = em.zeros(4, 3)
    with pytest.raises(RuntimeError, match=r"size mismatch for fc1.weight.*\(4, 3\).*\(3, 4\)"):
        b.load_state_dict(sd)


def test_train_eval_propagates_and_changes_dropout():
    net = Net()
    net.eval()
    assert not net.block[1].training
    x = em.randn(8, 4)
    np.testing.assert_array_equal(net(x).detach().numpy(), net(x).detach().numpy())
    net.train()
    assert all(m.training for m in net.modules())


def test_zero_grad_and_requires_grad():
    net = Net()
    net(em.randn(2, 4)).sum().backward()
    assert net.fc1.weight.grad is not None
    net.zero_grad()
    assert net.fc1.weight.grad is None
    net.requires_grad_(False)
    assert not any(p.requires_grad for p in net.parameters())


def test_apply_and_to_dtype():
    net = Net()
    seen = []
    net.apply(lambda m: seen.append(type(m).__name__))
    assert seen[-1] == "Net" and "Linear" in seen
    net.to(em.float64)
    assert net.fc1.weight.dtype == em.float64
    assert net.steps.dtype == em.int64  # integer buffers keep their dtype
    assert isinstance(net.fc1.weight, nn.Parameter)
    out = net(em.randn(2, 4, dtype=em.float64))
    assert out.dtype == em.float64


def test_forward_hooks_and_pre_hooks():
    lin = nn.Linear(2, 2)
    calls = []
    h1 = lin.register_forward_pre_hook(lambda m, args: (args[0] * 0,))
    h2 = lin.register_forward_hook(lambda m, args, out: calls.append(out.shape) or out + 1)
    out = lin(em.ones(1, 2))
    np.testing.assert_allclose(out.detach().numpy(), lin.bias.detach().numpy()[None] + 1,
                               rtol=1e-6)
    assert calls == [(1, 2)]
    h1.remove()
    h2.remove()
    out = lin(em.ones(1, 2))
    ref = em.ones(1, 2).numpy() @ lin.weight.detach().numpy().T + lin.bias.detach().numpy()
    np.testing.assert_allclose(out.detach().numpy(), ref, rtol=1e-6)


def test_setattr_type_errors():
    net = Net()
    with pytest.raises(TypeError, match="nn.Parameter"):
        net.scale = em.ones(1)
    with pytest.raises(TypeError, match="child module"):
        net.fc1 = 3
    net.fc1 = None
    assert net.fc1 is None


def test_repr_tree():
    r = repr(Net())
    assert "(fc1): Linear(in_features=4, out_features=3, bias=True)" in r
    assert "(block): Sequential(\n    (0): Linear" in r


def test_deepcopy_is_independent():
    net = Net()
    other = copy.deepcopy(net)
    with em.no_grad():
        other.fc1.weight.fill_(0.0)
    assert net.fc1.weight.abs().sum().item() > 0


def test_containers():
    seq = nn.Sequential(nn.Linear(2, 2), nn.ReLU())
    seq.append(nn.Linear(2, 1))
    assert len(seq) == 3 and isinstance(seq[-1], nn.Linear)
    assert isinstance(seq[:2], nn.Sequential) and len(seq[:2]) == 2
    ml = nn.ModuleList([nn.Linear(1, 1) for _ in range(3)])
    assert len(list(ml.parameters())) == 6
    md = nn.ModuleDict({"a": nn.Linear(1, 2)})
    assert "a.weight" in md.state_dict()
    with pytest.raises(IndexError):
        seq[5]
