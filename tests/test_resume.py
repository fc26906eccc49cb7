"""Resuming from a checkpoint continues exactly: train N steps, save model + optimizer +
scheduler + RNG, reload in a fresh process, continue — the weights equal those of an
uninterrupted run (the reference), bit for bit."""
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np

SCRIPT = textwrap.dedent('''
    import sys
    import numpy as np
    import ember as em
    import ember.nn as nn
    import ember.nn.functional as F

    mode, path, out = sys.argv[1], sys.argv[2], sys.argv[3]
    em.manual_seed(0)
    model = nn.Sequential(nn.Linear(6, 16), nn.ReLU(), nn.Dropout(0.2), nn.Linear(16, 3))
    opt = em.optim.Adam(model.parameters(), lr=1e-2)
    sched = em.optim.lr_scheduler.StepLR(opt, step_size=3, gamma=0.5)
    x = em.randn(64, 6)
    y = em.randint(0, 3, (64,))

    def step():
        idx = em.randperm(64)[:16]          # uses the RNG: it must be restored too
        opt.zero_grad()
        F.cross_entropy(model(x[idx]), y[idx]).backward()
        opt.step()
        sched.step()

    if mode == "resume":
        ck = em.load(path)
        model.load_state_dict(ck["model"])
        opt.load_state_dict(ck["optimizer"])
        sched.load_state_dict(ck["scheduler"])
        em.set_rng_state(ck["rng"])
        start = ck["step"]
    else:
        start = 0
    for i in range(start, 10):
        if mode == "first" and i == 5:
            em.save({"model": model.state_dict(), "optimizer": opt.state_dict(),
                     "scheduler": sched.state_dict(), "rng": em.get_rng_state(), "step": i},
                    path)
            break
        step()
    np.savez(out, **{k: v.numpy() for k, v in model.state_dict().items()})
''')


def _run(tmp_path, *args):
    script = tmp_path / "train.py"
    script.write_text(SCRIPT)
    src = str(Path(__file__).resolve().parents[1] / "src")
    env = {"PYTHONPATH": src, "PATH": "/usr/bin:/bin"}
    subprocess.run([sys.executable, str(script), *args], check=True, env=env)


def test_resume_in_fresh_process_equals_uninterrupted_run(tmp_path):
    ck = tmp_path / "ck.safetensors"
    _run(tmp_path, "full", str(ck), str(tmp_path / "full.npz"))
    _run(tmp_path, "first", str(ck), str(tmp_path / "first.npz"))
    _run(tmp_path, "resume", str(ck), str(tmp_path / "resumed.npz"))
    full = np.load(tmp_path / "full.npz")
    resumed = np.load(tmp_path / "resumed.npz")
    first = np.load(tmp_path / "first.npz")
    assert set(full.files) == set(resumed.files)
    for k in full.files:
        np.testing.assert_array_equal(resumed[k], full[k], err_msg=k)
    assert any(not np.array_equal(first[k], full[k]) for k in full.files)
