"""Realistic PyTorch training scripts run unchanged on ember (issue 3: ``import ember as torch``).

Each script is a function of the ``torch``-like module: it only uses ``torch.<name>``,
``torch.nn``, ``torch.nn.functional``, ``torch.optim(.lr_scheduler)`` and ``torch.utils.data``,
exactly as a PyTorch user writes them, and returns its final metrics. The table runs every
script on ember (and on PyTorch when it is installed, which checks the scripts themselves) and
asserts what the script should achieve: that the model learns (loss falls by a factor, accuracy
above a threshold), in a few seconds.

The second half copies PyTorch's initial weights into the same models built with ember (by
``state_dict``) and checks that outputs and gradients agree to float32 precision, and that
training both with the same data gives the same loss curve.
"""
from __future__ import annotations

import copy
import math
import os
import tempfile
import time

import numpy as np
import pytest

import ember

SECONDS_PER_SCRIPT = 20.0  # generous: the suite may share 2 cores with other work


# ----- models, built from whichever ``torch`` is passed -----------------------------------------


def make_mlp(torch, d=8, k=3):
    nn = torch.nn
    return nn.Sequential(nn.Linear(d, 64), nn.ReLU(), nn.Dropout(0.1),
                         nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, k))


def make_cnn(torch, dropout=0.2):
    nn = torch.nn
    F = torch.nn.functional

    class Net(nn.Module):
        def __init__(self, num_classes=2):
            super().__init__()
            self.conv1 = nn.Conv2d(1, 8, kernel_size=3, padding=1)
            self.bn1 = nn.BatchNorm2d(8)
            self.conv2 = nn.Conv2d(8, 16, 3, padding=1)
            self.pool = nn.MaxPool2d(2)
            self.fc1 = nn.Linear(16 * 2 * 2, 32)
            self.fc2 = nn.Linear(32, num_classes)
            self.register_buffer("mean", torch.tensor(0.5))
            self.register_buffer("std", torch.tensor(0.5))
            self.apply(self._init_weights)

        def _init_weights(self, m):
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, nn.Linear):
                nn.init.xavier_uniform_(m.weight)
                nn.init.constant_(m.bias, 0.0)
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

        def forward(self, x):
            x = (x - self.mean) / self.std
            x = self.pool(F.relu(self.bn1(self.conv1(x))))
            x = self.pool(F.relu(self.conv2(x)))
            x = x.view(x.size(0), -1)
            x = F.dropout(F.relu(self.fc1(x)), p=dropout, training=self.training)
            return self.fc2(x)

    return Net()


def make_seq_classifier(torch, vocab=5, emb=16, hidden=32, dropout=0.1):
    nn = torch.nn

    class SeqClassifier(nn.Module):
        def __init__(self):
            super().__init__()
            self.emb = nn.Embedding(vocab, emb, padding_idx=0)
            self.lstm = nn.LSTM(emb, hidden, num_layers=2, batch_first=True, dropout=dropout)
            self.head = nn.Linear(hidden, 1)

        def forward(self, tokens):
            out, (h, c) = self.lstm(self.emb(tokens))
            assert out.shape == (tokens.size(0), tokens.size(1), hidden)
            assert h.shape == (2, tokens.size(0), hidden) and c.shape == h.shape
            return self.head(out[:, -1, :]).squeeze(-1)

    return SeqClassifier()


def make_gpt(torch, vocab, block=16, n_embd=32, n_head=4):
    """nanoGPT in miniature: one block with hand-written masked attention, one with
    ``scaled_dot_product_attention(is_causal=True)``; the head is tied to the embedding."""
    nn = torch.nn
    F = torch.nn.functional

    class CausalSelfAttention(nn.Module):
        def __init__(self, manual):
            super().__init__()
            self.c_attn = nn.Linear(n_embd, 3 * n_embd)
            self.c_proj = nn.Linear(n_embd, n_embd)
            self.manual = manual
            self.register_buffer("bias", torch.tril(torch.ones(block, block))
                                 .view(1, 1, block, block))

        def forward(self, x):
            B, T, C = x.size()
            q, k, v = self.c_attn(x).split(n_embd, dim=2)
            k = k.view(B, T, n_head, C // n_head).transpose(1, 2)
            q = q.view(B, T, n_head, C // n_head).transpose(1, 2)
            v = v.view(B, T, n_head, C // n_head).transpose(1, 2)
            if self.manual:
                att = (q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(k.size(-1)))
                att = att.masked_fill(self.bias[:, :, :T, :T] == 0, float("-inf"))
                y = F.softmax(att, dim=-1) @ v
            else:
                y = F.scaled_dot_product_attention(q, k, v, attn_mask=None, dropout_p=0.0,
                                                   is_causal=True)
            return self.c_proj(y.transpose(1, 2).contiguous().view(B, T, C))

    class Block(nn.Module):
        def __init__(self, manual):
            super().__init__()
            self.ln_1 = nn.LayerNorm(n_embd)
            self.attn = CausalSelfAttention(manual)
            self.ln_2 = nn.LayerNorm(n_embd)
            self.mlp = nn.Sequential(nn.Linear(n_embd, 4 * n_embd), nn.GELU(approximate="tanh"),
                                     nn.Linear(4 * n_embd, n_embd))

        def forward(self, x):
            x = x + self.attn(self.ln_1(x))
            return x + self.mlp(self.ln_2(x))

    class GPT(nn.Module):
        def __init__(self):
            super().__init__()
            self.wte = nn.Embedding(vocab, n_embd)
            self.wpe = nn.Embedding(block, n_embd)
            self.blocks = nn.ModuleList([Block(True), Block(False)])
            self.ln_f = nn.LayerNorm(n_embd)
            self.lm_head = nn.Linear(n_embd, vocab, bias=False)
            self.lm_head.weight = self.wte.weight  # weight tying
            self.apply(self._init_weights)

        def _init_weights(self, module):
            if isinstance(module, nn.Linear):
                torch.nn.init.normal_(module.weight, mean=0.0, std=0.02)
                if module.bias is not None:
                    torch.nn.init.zeros_(module.bias)
            elif isinstance(module, nn.Embedding):
                torch.nn.init.normal_(module.weight, mean=0.0, std=0.02)

        def forward(self, idx, targets=None):
            B, T = idx.shape
            pos = torch.arange(0, T, dtype=torch.long, device=idx.device)
            x = self.wte(idx) + self.wpe(pos)
            for blk in self.blocks:
                x = blk(x)
            logits = self.lm_head(self.ln_f(x))
            loss = None
            if targets is not None:
                loss = F.cross_entropy(logits.view(-1, logits.size(-1)), targets.view(-1),
                                       ignore_index=-1)
            return logits, loss

        @torch.no_grad()
        def generate(self, idx, max_new_tokens, temperature=1.0, top_k=None):
            for _ in range(max_new_tokens):
                idx_cond = idx if idx.size(1) <= block else idx[:, -block:]
                logits, _ = self(idx_cond)
                logits = logits[:, -1, :] / temperature
                if top_k is not None:
                    v, _ = torch.topk(logits, min(top_k, logits.size(-1)))
                    logits[logits < v[:, [-1]]] = -float("Inf")
                probs = F.softmax(logits, dim=-1)
                idx_next = torch.multinomial(probs, num_samples=1)
                idx = torch.cat((idx, idx_next), dim=1)
            return idx

    return GPT()


def make_encoder_classifier(torch, vocab=10, d_model=32, nhead=4, num_classes=2, dropout=0.1):
    nn = torch.nn

    class PositionalEncoding(nn.Module):
        def __init__(self, max_len=64):
            super().__init__()
            position = torch.arange(max_len).unsqueeze(1)
            div_term = torch.exp(torch.arange(0, d_model, 2) * (-math.log(10000.0) / d_model))
            pe = torch.zeros(max_len, d_model)
            pe[:, 0::2] = torch.sin(position * div_term)
            pe[:, 1::2] = torch.cos(position * div_term)
            self.register_buffer("pe", pe.unsqueeze(0), persistent=False)

        def forward(self, x):
            return x + self.pe[:, :x.size(1)]

    class Classifier(nn.Module):
        def __init__(self):
            super().__init__()
            self.embed = nn.Embedding(vocab, d_model)
            self.pos = PositionalEncoding()
            layer = nn.TransformerEncoderLayer(d_model, nhead, dim_feedforward=64,
                                               dropout=dropout, batch_first=True)
            self.encoder = nn.TransformerEncoder(layer, num_layers=2, enable_nested_tensor=False)
            self.cls = nn.Linear(d_model, num_classes)

        def forward(self, src, pad_mask=None):
            h = self.encoder(self.pos(self.embed(src) * math.sqrt(d_model)),
                             src_key_padding_mask=pad_mask)
            if pad_mask is not None:
                keep = (~pad_mask).unsqueeze(-1).float()
                h = (h * keep).sum(1) / keep.sum(1).clamp(min=1.0)
            else:
                h = h.mean(dim=1)
            return self.cls(h)

    return Classifier()


def make_unet(torch):
    nn = torch.nn
    F = torch.nn.functional

    def block(cin, cout):
        return nn.Sequential(nn.Conv2d(cin, cout, 3, padding=1, bias=False),
                             nn.BatchNorm2d(cout), nn.ReLU(inplace=True))

    class UNet(nn.Module):
        def __init__(self):
            super().__init__()
            self.enc1 = block(1, 8)
            self.enc2 = block(8, 16)
            self.pool = nn.MaxPool2d(2)
            self.up = nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False)
            self.dec1 = block(16 + 8 + 16, 8)
            self.out = nn.Conv2d(8, 1, 1)

        def forward(self, x):
            e1 = self.enc1(x)
            e2 = self.enc2(self.pool(e1))
            d = torch.cat([F.interpolate(e2, size=e1.shape[-2:], mode="nearest"), self.up(e2),
                           e1], dim=1)
            return self.out(self.dec1(d))

    return UNet()


def make_forecaster(torch, hidden=32, num_layers=1):
    nn = torch.nn

    class Forecaster(nn.Module):
        def __init__(self):
            super().__init__()
            self.gru = nn.GRU(1, hidden, num_layers, batch_first=True)
            self.fc = nn.Linear(hidden, 1)

        def forward(self, x):
            h0 = torch.zeros(num_layers, x.size(0), hidden).to(x.device)
            out, hn = self.gru(x, h0)
            return self.fc(hn[-1])

    return Forecaster()


# ----- the scripts --------------------------------------------------------------------------


def mlp_classifier(torch):
    """Blobs classifier: Sequential MLP, TensorDataset/DataLoader(shuffle, drop_last), Adam
    with weight decay, OneCycleLR, clip_grad_norm_, eval under no_grad, save/load."""
    nn = torch.nn
    data = torch.utils.data
    torch.manual_seed(0)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    n, d, k = 600, 8, 3
    centers = torch.randn(k, d) * 3
    y = torch.randint(0, k, (n,))
    x = centers[y] + torch.randn(n, d)
    assert x.dtype == torch.float32 and y.dtype == torch.int64
    split = int(0.8 * n)
    train_dl = data.DataLoader(data.TensorDataset(x[:split], y[:split]), batch_size=32,
                               shuffle=True, drop_last=True)
    val_dl = data.DataLoader(data.TensorDataset(x[split:], y[split:]), batch_size=64)
    assert len(train_dl) == split // 32
    model = make_mlp(torch, d, k).to(device)
    criterion = nn.CrossEntropyLoss()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3, weight_decay=1e-4)
    epochs = 5
    scheduler = torch.optim.lr_scheduler.OneCycleLR(
        optimizer, max_lr=1e-2, steps_per_epoch=len(train_dl), epochs=epochs)

    def evaluate():
        model.eval()
        correct, total, loss_sum = 0, 0, 0.0
        with torch.no_grad():
            for xb, yb in val_dl:
                xb, yb = xb.to(device), yb.to(device)
                logits = model(xb)
                loss_sum += criterion(logits, yb).item() * xb.size(0)
                correct += (logits.argmax(dim=1) == yb).sum().item()
                total += yb.shape[0]
        return loss_sum / total, correct / total

    first_loss, _ = evaluate()
    for _ in range(epochs):
        model.train()
        for xb, yb in train_dl:
            xb, yb = xb.to(device), yb.to(device)
            optimizer.zero_grad(set_to_none=True)
            loss = criterion(model(xb), yb)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), max_norm=1.0)
            optimizer.step()
            scheduler.step()
    last_loss, acc = evaluate()
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "model.pt")
        torch.save(model.state_dict(), path)
        clone = make_mlp(torch, d, k)
        clone.load_state_dict(torch.load(path))
        clone.eval()
        with torch.no_grad():
            same = torch.allclose(clone(x[:5]), model(x[:5]))
    return {"first_loss": first_loss, "last_loss": last_loss, "acc": acc, "reload_same": same}


def cnn_classifier(torch):
    """Bars images: custom Module with register_buffer, _init_weights via apply, BatchNorm,
    F.dropout(training=self.training), x.view(x.size(0), -1), SGD parameter groups with
    different lr (nesterov), StepLR, a @torch.no_grad() evaluation function."""
    F = torch.nn.functional
    torch.manual_seed(1)
    n = 256
    y = torch.randint(0, 2, (n,))
    pos = torch.randint(1, 7, (n,))
    rows = torch.arange(8).view(1, 8, 1).expand(n, 8, 8)
    cols = torch.arange(8).view(1, 1, 8).expand(n, 8, 8)
    p = pos.view(n, 1, 1)
    imgs = torch.where(y.view(n, 1, 1) == 0, (rows == p).float(), (cols == p).float())
    imgs = torch.clamp(imgs.unsqueeze(1) + 0.3 * torch.rand(n, 1, 8, 8), 0.0, 1.0)
    model = make_cnn(torch)
    assert isinstance(model.mean, torch.Tensor)
    assert "mean" in model.state_dict() and "bn1.running_mean" in model.state_dict()
    conv_params = [p for name, p in model.named_parameters() if name.startswith(("conv", "bn"))]
    head_params = [p for name, p in model.named_parameters() if name.startswith("fc")]
    optimizer = torch.optim.SGD([{"params": conv_params, "lr": 0.02}, {"params": head_params}],
                                lr=0.05, momentum=0.9, nesterov=True)
    assert optimizer.param_groups[0]["lr"] == 0.02 and optimizer.param_groups[1]["lr"] == 0.05
    sched = torch.optim.lr_scheduler.StepLR(optimizer, step_size=10, gamma=0.5)

    @torch.no_grad()
    def accuracy(xs, ys):
        model.eval()
        return (model(xs).argmax(1) == ys).float().mean().item()

    losses = []
    for _ in range(30):
        model.train()
        idx = torch.randperm(n)[:64]
        loss = F.cross_entropy(model(imgs[idx]), y[idx])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        sched.step()
        losses.append(loss.item())
    return {"first_loss": sum(losses[:3]) / 3, "last_loss": sum(losses[-3:]) / 3,
            "acc": accuracy(imgs, y), "lr_end": optimizer.param_groups[1]["lr"],
            "n_params": sum(p.numel() for p in model.parameters() if p.requires_grad)}


def lstm_sequence(torch):
    """Counting task: Embedding(padding_idx) + 2-layer LSTM(batch_first, dropout), the last
    step's output, BCEWithLogitsLoss, AdamW, torch.randperm minibatches."""
    nn = torch.nn
    torch.manual_seed(2)
    n, T = 512, 12
    tokens = torch.randint(1, 5, (n, T))
    target = ((tokens == 1).sum(dim=1) > (tokens == 2).sum(dim=1)).float()
    model = make_seq_classifier(torch)
    loss_fn = nn.BCEWithLogitsLoss()
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    losses = []
    for _ in range(4):
        perm = torch.randperm(n)
        for i in range(0, n, 64):
            idx = perm[i:i + 64]
            loss = loss_fn(model(tokens[idx]), target[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            losses.append(loss.item())
    model.eval()
    with torch.no_grad():
        acc = ((torch.sigmoid(model(tokens)) > 0.5).float() == target).float().mean().item()
    return {"first_loss": sum(losses[:4]) / 4, "last_loss": sum(losses[-4:]) / 4, "acc": acc}


def tiny_gpt(torch):
    """Character LM: the nanoGPT idioms (tril buffer, masked_fill(-inf), SDPA is_causal,
    weight tying, AdamW decay/no-decay groups), then top-k multinomial sampling."""
    torch.manual_seed(3)
    text = "hello world, hello ember. " * 40
    chars = sorted(set(text))
    stoi = {c: i for i, c in enumerate(chars)}
    data = torch.tensor([stoi[c] for c in text], dtype=torch.long)
    block = 16
    model = make_gpt(torch, len(chars), block)
    assert model.lm_head.weight is model.wte.weight
    decay = [p for p in model.parameters() if p.dim() >= 2]
    no_decay = [p for p in model.parameters() if p.dim() < 2]
    optimizer = torch.optim.AdamW([{"params": decay, "weight_decay": 0.1},
                                   {"params": no_decay, "weight_decay": 0.0}],
                                  lr=3e-3, betas=(0.9, 0.95))

    def get_batch(bs=16):
        ix = torch.randint(len(data) - block, (bs,))
        x = torch.stack([data[i:i + block] for i in ix])
        y = torch.stack([data[i + 1:i + 1 + block] for i in ix])
        return x, y

    losses = []
    model.train()
    for _ in range(60):
        xb, yb = get_batch()
        _, loss = model(xb, yb)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        losses.append(loss.item())
    model.eval()
    out = model.generate(torch.zeros((1, 1), dtype=torch.long), max_new_tokens=20, top_k=5)
    assert out.shape == (1, 21) and out.dtype == torch.long
    return {"first_loss": losses[0], "last_loss": sum(losses[-5:]) / 5,
            "uniform": math.log(len(chars))}


def transformer_encoder(torch):
    """Does the (padded) sequence hold a 7: TransformerEncoder(batch_first) with a key padding
    mask, sinusoidal positional buffer, masked mean pooling, label smoothing,
    CosineAnnealingLR."""
    F = torch.nn.functional
    torch.manual_seed(4)
    n, T = 384, 10
    src = torch.randint(1, 7, (n, T))
    y = torch.randint(0, 2, (n,))
    where7 = torch.randint(0, T, (n,))
    rows = torch.arange(n)
    src[rows, where7] = torch.where(y == 1, torch.full_like(y, 7), src[rows, where7])
    lengths = torch.randint(T // 2, T + 1, (n,))
    pad_mask = torch.arange(T).unsqueeze(0) >= lengths.unsqueeze(1)
    y = ((src == 7) & ~pad_mask).any(dim=1).long()
    src = src.masked_fill(pad_mask, 0)
    model = make_encoder_classifier(torch)
    opt = torch.optim.Adam(model.parameters(), lr=2e-3)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=40)
    losses = []
    for _ in range(40):
        model.train()
        idx = torch.randint(0, n, (64,))
        loss = F.cross_entropy(model(src[idx], pad_mask[idx]), y[idx], label_smoothing=0.05)
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        losses.append(loss.item())
    model.eval()
    with torch.no_grad():
        acc = (F.softmax(model(src, pad_mask), dim=-1).argmax(-1) == y).float().mean().item()
    return {"first_loss": sum(losses[:3]) / 3, "last_loss": sum(losses[-3:]) / 3, "acc": acc,
            "lr_end": sched.get_last_lr()[0]}


def regression_and_utils(torch):
    """Polynomial fit in float64 (set_default_dtype, nn.Parameter, buffer, einsum, SGD with
    momentum), then a sheet of tensor utilities whose values are known exactly."""
    nn = torch.nn
    torch.manual_seed(5)
    torch.set_default_dtype(torch.float64)
    try:
        assert torch.get_default_dtype() == torch.float64
        x = torch.linspace(-2, 2, 200).unsqueeze(1)
        assert x.dtype == torch.float64
        y_true = 1.5 * x ** 3 - 2 * x + 0.5 + 0.05 * torch.randn_like(x)

        class Poly(nn.Module):
            def __init__(self, degree=3):
                super().__init__()
                self.coef = nn.Parameter(torch.zeros(degree + 1))
                self.register_buffer("powers", torch.arange(degree + 1, dtype=torch.float64))

            def forward(self, x):
                return torch.einsum("nd,d->n", x ** self.powers, self.coef).unsqueeze(-1)

        model = Poly()
        opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
        loss_fn = nn.MSELoss()
        first = None
        for _ in range(300):
            opt.zero_grad()
            loss = loss_fn(model(x), y_true)
            first = loss.item() if first is None else first
            loss.backward()
            opt.step()
        coef = model.coef.detach().tolist()
    finally:
        torch.set_default_dtype(torch.float32)
    a = torch.arange(12).view(3, 4)
    facts = {
        "is_tensor": torch.is_tensor(a) and not torch.is_tensor([1]),
        "numel": torch.numel(a),
        "new_zeros": (tuple(a.new_zeros(2, 2).shape), a.new_zeros(2, 2).dtype == torch.int64),
        "zeros_like": torch.zeros_like(a, dtype=torch.float32).dtype == torch.float32,
        "cat": torch.cat([a, a], dim=0).shape[0],
        "stack": tuple(torch.stack([a, a], dim=1).shape),
        "permute": tuple(a.unsqueeze(0).permute(2, 0, 1).shape),
        "where": torch.where(a > 5, a, torch.zeros_like(a)).sum().item(),
        "clamp": torch.clamp(a, min=2, max=9).sum().item(),
        "einsum": torch.einsum("ij,kj->ik", a.float(), a.float()).trace().item(),
        "topk": torch.topk(torch.tensor([1.0, 5.0, 3.0, 4.0]), 2).indices.tolist(),
        "max_dim": torch.max(a, dim=1).values.tolist(),
        "std": round(a.float().std().item(), 5),
        "tril_sum": torch.tril(torch.ones(4, 4)).sum().item(),
        "isinstance": isinstance(torch.randn(2), torch.Tensor),
        "cuda": torch.cuda.is_available(),
        "argmax_keepdim": tuple(a.argmax(dim=1, keepdim=True).shape),
        "masked_fill": a.masked_fill(a % 2 == 0, -1).sum().item(),
        "sort": torch.sort(torch.tensor([3, 1, 2]), descending=True).values.tolist(),
        "item_int": type(a.sum().item()).__name__,
        "eps": torch.finfo(torch.float32).eps,
        "f16max": torch.finfo(torch.float16).max,
        "imax": torch.iinfo(torch.int32).max,
        "size": a.size() == (3, 4) and a.shape.numel() == 12,
        "pi": round(torch.pi, 6),
    }
    return {"first_loss": first, "last_loss": loss.item(), "coef": coef, "facts": facts}


UTILITY_FACTS = {
    "is_tensor": True, "numel": 12, "new_zeros": ((2, 2), True), "zeros_like": True, "cat": 6,
    "stack": (3, 2, 4), "permute": (4, 1, 3), "where": 51, "clamp": 66, "einsum": 506.0,
    "topk": [1, 3], "max_dim": [3, 7, 11], "std": 3.60555, "tril_sum": 10.0, "isinstance": True,
    "cuda": False, "argmax_keepdim": (3, 1), "masked_fill": 30, "sort": [3, 2, 1],
    "item_int": "int", "eps": 2.0 ** -23, "f16max": 65504.0, "imax": 2 ** 31 - 1, "size": True,
    "pi": 3.141593,
}


def autoencoder(torch):
    """Nested Modules, a map-style Dataset subclass, RMSprop, ReduceLROnPlateau on the epoch
    loss, named_modules / state_dict names."""
    nn = torch.nn
    F = torch.nn.functional
    data = torch.utils.data
    torch.manual_seed(6)

    class Encoder(nn.Module):
        def __init__(self):
            super().__init__()
            self.net = nn.Sequential(nn.Linear(16, 8), nn.Tanh(), nn.Linear(8, 3))

        def forward(self, x):
            return self.net(x)

    class AE(nn.Module):
        def __init__(self):
            super().__init__()
            self.encoder = Encoder()
            self.decoder = nn.Sequential(nn.Linear(3, 8), nn.LeakyReLU(0.1), nn.Linear(8, 16))

        def forward(self, x):
            return self.decoder(self.encoder(x))

    class Points(data.Dataset):
        def __init__(self, x):
            self.x = x

        def __len__(self):
            return len(self.x)

        def __getitem__(self, i):
            return self.x[i]

    x = torch.tanh(torch.randn(512, 3) @ torch.randn(3, 16))
    dl = data.DataLoader(Points(x), batch_size=64, shuffle=True)
    model = AE()
    opt = torch.optim.RMSprop(model.parameters(), lr=3e-3)
    sched = torch.optim.lr_scheduler.ReduceLROnPlateau(opt, mode="min", factor=0.5, patience=2)
    hist = []
    for _ in range(15):
        total = 0.0
        for xb in dl:
            loss = F.mse_loss(model(xb), xb, reduction="sum") / xb.size(0)
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += loss.item() * xb.size(0)
        hist.append(total / len(dl.dataset))
        sched.step(hist[-1])
    return {"first_loss": hist[0], "last_loss": hist[-1],
            "modules": [n for n, _ in model.named_modules()],
            "keys": list(model.state_dict().keys())}


def vae(torch):
    """VAE on binary 4x4 bars: reparameterisation with randn_like, BCE(reduction='sum') + KL,
    one_hot, sampling from the prior."""
    nn = torch.nn
    F = torch.nn.functional
    torch.manual_seed(7)

    class VAE(nn.Module):
        def __init__(self, d=16, h=32, z=2):
            super().__init__()
            self.fc1 = nn.Linear(d, h)
            self.fc_mu = nn.Linear(h, z)
            self.fc_logvar = nn.Linear(h, z)
            self.fc3 = nn.Linear(z, h)
            self.fc4 = nn.Linear(h, d)

        def encode(self, x):
            h = F.relu(self.fc1(x))
            return self.fc_mu(h), self.fc_logvar(h)

        def reparameterize(self, mu, logvar):
            std = torch.exp(0.5 * logvar)
            return mu + torch.randn_like(std) * std

        def decode(self, z):
            return torch.sigmoid(self.fc4(F.relu(self.fc3(z))))

        def forward(self, x):
            mu, logvar = self.encode(x.view(-1, 16))
            return self.decode(self.reparameterize(mu, logvar)), mu, logvar

    def loss_function(recon_x, x, mu, logvar):
        bce = F.binary_cross_entropy(recon_x, x.view(-1, 16), reduction="sum")
        kld = -0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp())
        return bce + kld

    n = 512
    rows = torch.randint(0, 4, (n,))
    x = F.one_hot(rows, num_classes=4).float().unsqueeze(2).expand(n, 4, 4).contiguous()
    x = x.view(n, 1, 4, 4)
    model = VAE()
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    losses = []
    for _ in range(10):
        model.train()
        train_loss = 0
        for i in range(0, n, 64):
            data = x[i:i + 64]
            opt.zero_grad()
            recon, mu, logvar = model(data)
            loss = loss_function(recon, data, mu, logvar)
            loss.backward()
            train_loss += loss.item()
            opt.step()
        losses.append(train_loss / n)
    model.eval()
    with torch.no_grad():
        sample = model.decode(torch.randn(8, 2)).cpu()
    in_range = 0 <= sample.min().item() and sample.max().item() <= 1
    return {"first_loss": losses[0], "last_loss": losses[-1], "in_range": in_range}


def gcn(torch):
    """Two-community graph: message passing with index_add_, degree normalisation with pow,
    boolean train masks, log_softmax + nll_loss."""
    nn = torch.nn
    F = torch.nn.functional
    torch.manual_seed(8)
    n = 40
    y = (torch.arange(n) >= n // 2).long()
    src, dst = [], []
    for i in range(n):
        for j in range(n):
            same = (i < n // 2) == (j < n // 2)
            if i != j and ((same and (i + j) % 3 == 0) or (not same and (i * j) % 37 == 1)):
                src.append(i)
                dst.append(j)
    edge_index = torch.tensor([src, dst], dtype=torch.long)
    x = torch.randn(n, 8) * 0.1
    x[:, 0] += (y.float() - 0.5) * 0.2

    class GCNLayer(nn.Module):
        def __init__(self, cin, cout):
            super().__init__()
            self.lin = nn.Linear(cin, cout, bias=False)
            self.bias = nn.Parameter(torch.zeros(cout))

        def forward(self, x, edge_index):
            row, col = edge_index
            deg = torch.zeros(x.size(0)).index_add_(0, col, torch.ones(col.numel())) + 1
            norm = deg.pow(-0.5)
            h = self.lin(x)
            msg = h[row] * (norm[row] * norm[col]).unsqueeze(-1)
            out = torch.zeros_like(h).index_add_(0, col, msg) + h / deg.unsqueeze(-1)
            return out + self.bias

    class GCN(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv1 = GCNLayer(8, 16)
            self.conv2 = GCNLayer(16, 2)

        def forward(self, x, edge_index):
            x = F.dropout(F.relu(self.conv1(x, edge_index)), p=0.2, training=self.training)
            return F.log_softmax(self.conv2(x, edge_index), dim=1)

    model = GCN()
    opt = torch.optim.Adam(model.parameters(), lr=0.02, weight_decay=5e-4)
    train_mask = torch.zeros(n, dtype=torch.bool)
    train_mask[::4] = True
    losses = []
    for _ in range(60):
        model.train()
        opt.zero_grad()
        loss = F.nll_loss(model(x, edge_index)[train_mask], y[train_mask])
        loss.backward()
        opt.step()
        losses.append(loss.item())
    model.eval()
    pred = model(x, edge_index).argmax(dim=1)
    acc = int((pred[~train_mask] == y[~train_mask]).sum()) / int((~train_mask).sum())
    return {"first_loss": losses[0], "last_loss": losses[-1], "acc": acc}


def resume_and_tricks(torch):
    """A custom autograd.Function, copy.deepcopy EMA weights, random_split with a Generator,
    gradient accumulation, LambdaLR warm-up, a checkpoint dict with model/EMA/optimizer/
    scheduler state that resumes bit-for-bit, and freezing a sub-network."""
    nn = torch.nn
    F = torch.nn.functional
    torch.manual_seed(9)

    class ClampGrad(torch.autograd.Function):
        """Identity forward, gradient clipped to [-0.1, 0.1]."""

        @staticmethod
        def forward(ctx, x):
            return x.clone()

        @staticmethod
        def backward(ctx, grad_output):
            return grad_output.clamp(-0.1, 0.1)

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.features = nn.Sequential(nn.Linear(4, 16), nn.Tanh())
            self.classifier = nn.Linear(16, 3)

        def forward(self, x):
            return self.classifier(ClampGrad.apply(self.features(x)))

    x = torch.randn(300, 4)
    y = (x @ torch.randn(4, 3)).argmax(dim=1)
    train_ds, val_ds = torch.utils.data.random_split(
        torch.utils.data.TensorDataset(x, y), [240, 60],
        generator=torch.Generator().manual_seed(0))

    def make():
        torch.manual_seed(10)
        model = Net()
        ema = copy.deepcopy(model)
        for p in ema.parameters():
            p.requires_grad_(False)
        opt = torch.optim.SGD(filter(lambda p: p.requires_grad, model.parameters()), lr=0.1,
                              momentum=0.9, weight_decay=1e-4)
        sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda step: min(1.0, (step + 1) / 10))
        return model, ema, opt, sched

    def run_epochs(model, ema, opt, sched, epochs, accum=2):
        g = torch.Generator().manual_seed(123)
        dl = torch.utils.data.DataLoader(train_ds, batch_size=16, shuffle=True, generator=g)
        for _ in range(epochs):
            model.train()
            opt.zero_grad(set_to_none=True)  # drop a partial accumulation
            for step, (xb, yb) in enumerate(dl):
                (F.cross_entropy(model(xb), yb) / accum).backward()
                if (step + 1) % accum == 0:
                    opt.step()
                    opt.zero_grad(set_to_none=True)
                    sched.step()
                    with torch.no_grad():
                        for pe, pm in zip(ema.parameters(), model.parameters()):
                            pe.mul_(0.9).add_(pm.detach(), alpha=0.1)

    @torch.no_grad()
    def accuracy(m):
        m.eval()
        xs = torch.stack([val_ds[i][0] for i in range(len(val_ds))])
        ys = torch.stack([val_ds[i][1] for i in range(len(val_ds))])
        return (m(xs).argmax(1) == ys).float().mean().item()

    model, ema, opt, sched = make()
    run_epochs(model, ema, opt, sched, 2)
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "ckpt.pth")
        torch.save({"epoch": 2, "model": model.state_dict(), "ema": ema.state_dict(),
                    "optimizer": opt.state_dict(), "scheduler": sched.state_dict()}, path)
        ck = torch.load(path, map_location="cpu")
    resumed, ema2, opt2, sched2 = make()
    resumed.load_state_dict(ck["model"])
    ema2.load_state_dict(ck["ema"])
    opt2.load_state_dict(ck["optimizer"])
    sched2.load_state_dict(ck["scheduler"])
    run_epochs(resumed, ema2, opt2, sched2, 2)
    run_epochs(model, ema, opt, sched, 2)  # the run that never stopped
    same = torch.equal(resumed(x[:8]), model(x[:8])) and torch.equal(ema2(x[:8]), ema(x[:8]))
    for p in resumed.features.parameters():
        p.requires_grad = False
    before = resumed.features[0].weight.clone()
    opt_head = torch.optim.Adam([p for p in resumed.parameters() if p.requires_grad], lr=1e-2)
    F.cross_entropy(resumed(x), y).backward()
    opt_head.step()
    return {"acc": accuracy(resumed), "ema_acc": accuracy(ema2), "resumed_same": same,
            "epoch": ck["epoch"], "frozen": torch.equal(before, resumed.features[0].weight),
            "n_trainable": sum(p.numel() for p in resumed.parameters() if p.requires_grad)}


def tiny_unet(torch):
    """Segmentation: conv blocks with BatchNorm + ReLU(inplace=True), MaxPool2d,
    nn.Upsample(bilinear) and F.interpolate(nearest) skips joined by torch.cat, BCE with
    logits, IoU under no_grad."""
    F = torch.nn.functional
    torch.manual_seed(11)
    n = 64
    imgs = torch.rand(n, 1, 8, 8) * 0.5
    masks = torch.zeros(n, 1, 8, 8)
    corners = torch.randint(0, 5, (n, 2))
    for i in range(n):
        r, c = corners[i].tolist()
        imgs[i, :, r:r + 3, c:c + 3] += 0.6
        masks[i, :, r:r + 3, c:c + 3] = 1.0
    model = make_unet(torch)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2)
    losses = []
    for _ in range(30):
        idx = torch.randint(0, n, (16,))
        loss = F.binary_cross_entropy_with_logits(model(imgs[idx]), masks[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    model.eval()
    with torch.no_grad():
        pred = (torch.sigmoid(model(imgs)) > 0.5).float()
        inter = (pred * masks).sum()
        iou = (inter / (pred.sum() + masks.sum() - inter)).item()
    return {"first_loss": losses[0], "last_loss": sum(losses[-3:]) / 3, "iou": iou}


def gru_forecaster(torch):
    """Time series: sliding windows with Tensor.unfold, GRU with an explicit h0 moved
    .to(device), MSELoss, StepLR, a DataLoader iterator re-created on StopIteration."""
    nn = torch.nn
    torch.manual_seed(12)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    t = torch.linspace(0, 20 * math.pi, 2000)
    series = torch.sin(t) + 0.5 * torch.sin(3 * t) + 0.05 * torch.randn_like(t)
    xs = series.unfold(0, 21, 1)  # (N, 21) windows
    inputs, targets = xs[:, :-1].unsqueeze(-1), xs[:, -1:]
    model = make_forecaster(torch).to(device)
    crit = nn.MSELoss()
    opt = torch.optim.Adam(model.parameters(), lr=5e-3)
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=20, gamma=0.5)
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(inputs, targets),
                                         batch_size=64, shuffle=True)
    losses = []
    it = iter(loader)
    for _ in range(50):
        try:
            xb, yb = next(it)
        except StopIteration:
            it = iter(loader)
            xb, yb = next(it)
        loss = crit(model(xb.to(device)), yb.to(device))
        opt.zero_grad()
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        losses.append(loss.item())
    return {"first_loss": sum(losses[:3]) / 3, "last_loss": sum(losses[-5:]) / 5,
            "baseline": torch.var(targets).item()}


# What each script must achieve (on ember and on PyTorch alike).
SCRIPTS = [
    (mlp_classifier, lambda r: r["acc"] >= 0.9 and r["last_loss"] < 0.5 * r["first_loss"]
     and r["reload_same"]),
    (cnn_classifier, lambda r: r["acc"] >= 0.9 and r["last_loss"] < 0.5 * r["first_loss"]
     and r["lr_end"] == pytest.approx(0.05 * 0.5 ** 3) and r["n_params"] == 3410),
    (lstm_sequence, lambda r: r["acc"] >= 0.75 and r["last_loss"] < 0.8 * r["first_loss"]),
    (tiny_gpt, lambda r: r["last_loss"] < r["uniform"] - 1.0),
    (transformer_encoder, lambda r: r["acc"] >= 0.9 and r["last_loss"] < 0.5 * r["first_loss"]
     and r["lr_end"] == pytest.approx(0.0, abs=1e-12)),
    (regression_and_utils, lambda r: r["last_loss"] < 0.01 * r["first_loss"]
     and np.allclose(r["coef"], [0.5, -2.0, 0.0, 1.5], atol=0.05)
     and r["facts"] == UTILITY_FACTS),
    (autoencoder, lambda r: r["last_loss"] < 0.2 * r["first_loss"] and r["modules"] == [
        "", "encoder", "encoder.net", "encoder.net.0", "encoder.net.1", "encoder.net.2",
        "decoder", "decoder.0", "decoder.1", "decoder.2"] and r["keys"][0] ==
     "encoder.net.0.weight" and len(r["keys"]) == 8),
    (vae, lambda r: r["last_loss"] < 0.5 * r["first_loss"] and r["in_range"]),
    (gcn, lambda r: r["acc"] >= 0.9 and r["last_loss"] < 0.3 * r["first_loss"]),
    (resume_and_tricks, lambda r: r["resumed_same"] and r["frozen"] and r["epoch"] == 2
     and r["n_trainable"] == 51 and r["acc"] >= 0.8),
    (tiny_unet, lambda r: r["iou"] >= 0.8 and r["last_loss"] < 0.5 * r["first_loss"]),
    (gru_forecaster, lambda r: r["last_loss"] < 0.2 * r["baseline"]),
]


def _torch_or_skip():
    return pytest.importorskip("torch")


@pytest.mark.parametrize("script, check", SCRIPTS, ids=[s.__name__ for s, _ in SCRIPTS])
def test_script_learns_on_ember(script, check):
    start = time.perf_counter()
    result = script(ember)
    elapsed = time.perf_counter() - start
    assert check(result), f"{script.__name__} on ember: {result}"
    assert elapsed < SECONDS_PER_SCRIPT, f"{script.__name__} took {elapsed:.1f}s on ember"


@pytest.mark.parametrize("script, check", SCRIPTS, ids=[s.__name__ for s, _ in SCRIPTS])
def test_script_learns_on_pytorch(script, check):
    """The same scripts are valid PyTorch and meet the same bar there."""
    torch = _torch_or_skip()
    torch.set_num_threads(1)  # the suite runs in parallel processes
    result = script(torch)
    assert check(result), f"{script.__name__} on PyTorch: {result}"


# ----- identical weights: identical outputs, gradients and training curves ---------------------


def _copy_weights(src, dst):
    """PyTorch module ``src`` -> ember module ``dst``, by state_dict names."""
    dst.load_state_dict({k: ember.tensor(v.detach().numpy().copy())
                         for k, v in src.state_dict().items()})


def _grads(model) -> dict:
    return {n: p.grad.detach().numpy() for n, p in model.named_parameters()
            if p.grad is not None}


def _inputs_tokens(lib, rng, vocab, shape):
    return lib.tensor(rng.integers(0, vocab, shape))


TRANSFER = {
    # name: (build(torch-like) -> model, inputs(lib, rng) -> tuple, loss(out) -> scalar)
    "gpt": (lambda lib: make_gpt(lib, 11),
            lambda lib, rng: (_inputs_tokens(lib, rng, 11, (3, 16)),
                              _inputs_tokens(lib, rng, 11, (3, 16))),
            lambda out: out[1]),
    "encoder_classifier": (lambda lib: make_encoder_classifier(lib, dropout=0.0),
                           lambda lib, rng: (_inputs_tokens(lib, rng, 10, (4, 7)),
                                             lib.tensor(np.arange(7)[None] >= np.array(
                                                 [[7], [5], [3], [6]]))),
                           lambda out: (out ** 2).sum()),
    "lstm": (lambda lib: make_seq_classifier(lib, dropout=0.0),
             lambda lib, rng: (_inputs_tokens(lib, rng, 5, (4, 9)),),
             lambda out: (out ** 2).sum()),
    "cnn": (lambda lib: make_cnn(lib, dropout=0.0),
            lambda lib, rng: (lib.tensor(rng.random((4, 1, 8, 8)).astype(np.float32)),),
            lambda out: (out ** 2).sum()),
    "unet": (make_unet, lambda lib, rng: (lib.tensor(rng.random((2, 1, 8, 8)).astype(
        np.float32)),), lambda out: (out ** 2).mean()),
    "gru": (make_forecaster, lambda lib, rng: (lib.tensor(rng.standard_normal((3, 12, 1))
                                                          .astype(np.float32)),),
            lambda out: (out ** 2).sum()),
}


@pytest.mark.parametrize("train_mode", [False, True], ids=["eval", "train"])
@pytest.mark.parametrize("name", list(TRANSFER))
def test_copied_weights_give_pytorchs_outputs_and_gradients(name, train_mode):
    torch = _torch_or_skip()
    build, inputs, loss_of = TRANSFER[name]
    torch.manual_seed(0)
    t_model, e_model = build(torch), build(ember)
    _copy_weights(t_model, e_model)
    t_model.train(train_mode)
    e_model.train(train_mode)
    rng = np.random.default_rng(0)
    t_in = inputs(torch, rng)
    e_in = inputs(ember, np.random.default_rng(0))
    t_out, e_out = t_model(*t_in), e_model(*e_in)
    loss_of(t_out).backward()
    loss_of(e_out).backward()
    t_first = t_out[0] if isinstance(t_out, tuple) else t_out
    e_first = e_out[0] if isinstance(e_out, tuple) else e_out
    np.testing.assert_allclose(e_first.detach().numpy(), t_first.detach().numpy(), rtol=1e-4,
                               atol=1e-5)
    want = _grads(t_model)
    got = _grads(e_model)
    assert got.keys() == want.keys()
    for k in want:
        scale = max(1.0, float(np.abs(want[k]).max()))
        np.testing.assert_allclose(got[k], want[k], rtol=1e-3, atol=2e-5 * scale, err_msg=k)
    if train_mode and name in ("cnn", "unet"):  # BatchNorm's running statistics moved alike
        for k, v in t_model.state_dict().items():
            np.testing.assert_allclose(e_model.state_dict()[k].numpy(), v.numpy(), rtol=1e-4,
                                       atol=1e-6, err_msg=k)


def _train_curve(lib, model, x, y, steps):
    """Full-batch training with Adam, OneCycleLR and gradient clipping: the loss per step."""
    opt = lib.optim.Adam([{"params": list(model.parameters())[:2], "lr": 1e-3},
                          {"params": list(model.parameters())[2:]}], lr=3e-3,
                         weight_decay=1e-4)
    sched = lib.optim.lr_scheduler.OneCycleLR(opt, max_lr=[3e-3, 1e-2], total_steps=steps)
    losses = []
    for _ in range(steps):
        loss = lib.nn.functional.cross_entropy(model(x), y, label_smoothing=0.1)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        lib.nn.utils.clip_grad_norm_(model.parameters(), 0.5)
        opt.step()
        sched.step()
        losses.append(loss.item())
    return np.array(losses)


def test_same_init_and_data_give_pytorchs_training_curve():
    torch = _torch_or_skip()
    torch.manual_seed(0)
    rng = np.random.default_rng(1)
    x = rng.standard_normal((128, 8)).astype(np.float32)
    y = (x @ rng.standard_normal((8, 3))).argmax(1)
    t_model = torch.nn.Sequential(torch.nn.Linear(8, 32), torch.nn.Tanh(),
                                  torch.nn.Linear(32, 3))
    e_model = ember.nn.Sequential(ember.nn.Linear(8, 32), ember.nn.Tanh(),
                                  ember.nn.Linear(32, 3))
    _copy_weights(t_model, e_model)
    want = _train_curve(torch, t_model, torch.tensor(x), torch.tensor(y), 40)
    got = _train_curve(ember, e_model, ember.tensor(x), ember.tensor(y), 40)
    assert want[-1] < 0.8 * want[0]
    np.testing.assert_allclose(got, want, rtol=1e-4)


def test_same_gpt_and_batches_give_pytorchs_losses():
    torch = _torch_or_skip()
    torch.manual_seed(0)
    t_model, e_model = make_gpt(torch, 11), make_gpt(ember, 11)
    _copy_weights(t_model, e_model)
    rng = np.random.default_rng(2)
    batches = [rng.integers(0, 11, (4, 17)) for _ in range(8)]
    curves = []
    for lib, model in ((torch, t_model), (ember, e_model)):
        opt = lib.optim.AdamW(model.parameters(), lr=3e-3, betas=(0.9, 0.95),
                              weight_decay=0.1)
        losses = []
        for b in batches:
            _, loss = model(lib.tensor(b[:, :-1]), lib.tensor(b[:, 1:]))
            opt.zero_grad()
            loss.backward()
            opt.step()
            losses.append(loss.item())
        curves.append(losses)
    np.testing.assert_allclose(curves[1], curves[0], rtol=2e-4)
