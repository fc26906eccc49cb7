"""Bad input gets an error naming the op, the shapes/dtypes and what was expected — raised at
the user's call, never a NumPy traceback from inside ember."""
import traceback

import pytest

import ember as em


def _raises(exc, fn, *patterns):
    with pytest.raises(exc) as info:
        fn()
    msg = str(info.value)
    for p in patterns:
        assert p in msg, f"{p!r} not in {msg!r}"
    # no NumPy frames and no chained NumPy exception in what the user sees
    assert info.value.__cause__ is None
    frames = traceback.extract_tb(info.value.__traceback__)
    assert not any("/numpy/" in f.filename for f in frames), frames
    return msg


CASES = [
    ("matmul", ValueError, lambda: em.ones(3, 4) @ em.ones(5, 6),
     ["matmul: shapes (3, 4) and (5, 6) cannot be multiplied (4 != 5)"]),
    ("add broadcast", ValueError, lambda: em.ones(3) + em.ones(4), ["add", "(3,)", "(4,)"]),
    ("mul broadcast", ValueError, lambda: em.ones(2, 3) * em.ones(3, 2),
     ["mul", "(2, 3)", "(3, 2)"]),
    ("where broadcast", ValueError,
     lambda: em.where(em.ones(2, dtype=em.bool), em.ones(3), em.ones(2)), ["where"]),
    ("sum dim", IndexError, lambda: em.ones(2, 3).sum(dim=2),
     ["sum", "dimension out of range", "[-2, 1]", "got 2"]),
    ("softmax dim", IndexError, lambda: em.softmax(em.ones(2), dim=3), ["softmax", "got 3"]),
    ("reshape", RuntimeError, lambda: em.ones(2, 3).reshape(4, 2),
     ["reshape", "(4, 2)", "size 6"]),
    ("cat sizes", RuntimeError, lambda: em.cat([em.ones(2, 3), em.ones(2, 4)]),
     ["cat", "(2, 3)", "(2, 4)"]),
    ("index range", IndexError, lambda: em.ones(3)[5], ["5", "dimension 0", "size 3"]),
    ("float index", IndexError, lambda: em.ones(3)[em.tensor([0.0, 1.0])],
     ["long, int, byte or bool", "float32"]),
    ("gather index dtype", IndexError, lambda: em.ones(3).gather(0, em.tensor([0.5])),
     ["gather", "long"]),
    ("index_select range", IndexError,
     lambda: em.ones(3).index_select(0, em.tensor([7])), ["index_select", "size 3"]),
    ("bmm rank", RuntimeError, lambda: em.bmm(em.ones(2, 3), em.ones(3, 2)),
     ["bmm", "3-d", "(2, 3)"]),
    ("expand", RuntimeError, lambda: em.ones(3).expand(2, 4), ["expand", "(2, 4)"]),
    ("item", RuntimeError, lambda: em.ones(3).item(), ["item", "3 elements"]),
    ("bool ambiguous", RuntimeError, lambda: bool(em.ones(3)), ["ambiguous"]),
    ("int tensor in-place float", RuntimeError, lambda: em.arange(3).add_(1.5),
     ["add_", "can't be cast", "int64"]),
    ("permute", RuntimeError, lambda: em.ones(2, 3).permute(0), ["permute", "2 dims"]),
    ("device", RuntimeError, lambda: em.ones(2).to("tpu"), ["tpu", "cpu"]),
    ("numpy with grad", RuntimeError, lambda: em.ones(2, requires_grad=True).numpy(),
     ["detach"]),
    ("mean of ints", RuntimeError, lambda: em.arange(3).mean(), ["mean", "int64"]),
    ("topk k", RuntimeError, lambda: em.ones(3).topk(5), ["topk", "5"]),
]


@pytest.mark.parametrize("name,exc,fn,patterns", CASES, ids=[c[0] for c in CASES])
def test_error_message(name, exc, fn, patterns):
    _raises(exc, fn, *patterns)
