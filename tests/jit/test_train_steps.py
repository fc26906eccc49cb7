"""Whole training steps of the benchmark workloads, jitted vs eager: 10 steps, same
parameters (to float32 rounding). The workloads come from benchmarks/workloads.py."""
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest

import ember as em

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
import workloads  # noqa: E402


def _small_gpt(lib):
    F = lib.nn.functional
    model = workloads._gpt_model(lib, vocab=32, ctx=16, d=32, heads=4, layers=2)
    opt = lib.optim.AdamW(model.parameters(), lr=3e-3, weight_decay=0.01)
    x, y = lib.randint(0, 32, (4, 16)), lib.randint(0, 32, (4, 16))
    return model, opt, lambda: F.cross_entropy(model(x).reshape(-1, 32), y.reshape(-1))


def _small_lstm(lib):
    nn, F = lib.nn, lib.nn.functional

    class Tagger(nn.Module):  # the lstm workload's model, smaller
        def __init__(self):
            super().__init__()
            self.emb = nn.Embedding(20, 8)
            self.rnn = nn.LSTM(8, 16, batch_first=True, num_layers=2, bidirectional=True)
            self.head = nn.Linear(32, 20)

        def forward(self, x):
            return self.head(self.rnn(self.emb(x))[0])

    model = Tagger()
    opt = lib.optim.Adam(model.parameters(), lr=1e-2)
    x, y = lib.randint(0, 20, (3, 7)), lib.randint(0, 20, (3, 7))
    return model, opt, lambda: F.cross_entropy(model(x).reshape(-1, 20), y.reshape(-1))


BUILDERS = {"mlp": workloads.mlp, "cnn": workloads.cnn, "gpt-small": _small_gpt,
            "lstm-small": _small_lstm}


@pytest.mark.parametrize("name", list(BUILDERS))
def test_jitted_training_steps_equal_eager(name):
    runs = []
    for use_jit in (False, True):
        em.manual_seed(0)
        model, opt, loss_fn = BUILDERS[name](em)
        step = workloads._train_step(model, opt, loss_fn)
        if use_jit:
            step = em.jit(step)
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # a fallback to eager would warn: fail instead
            for _ in range(10):
                step()
        if use_jit:
            assert step.retraces == 0 and step.graph.nodes
        runs.append({k: v.detach().numpy().copy() for k, v in model.state_dict().items()})
    eager, jitted = runs
    for k in eager:
        np.testing.assert_allclose(jitted[k], eager[k], rtol=1e-4, atol=1e-5, err_msg=k)
