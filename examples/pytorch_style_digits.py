"""PyTorch's classic MNIST example, ported to ember by changing the imports — trained on the
handwritten digits bundled with ember (8x8 images, so the network's sizes follow the image).

    python examples/pytorch_style_digits.py --epochs 14

Conv2d/Dropout/Linear network, log_softmax + nll_loss, Adadelta + StepLR, DataLoader — the
structure of pytorch/examples' mnist/main.py. Reaches ~98% test accuracy in well under a
minute on 2 cores.
"""
import argparse
import time

import ember as torch                       # the only change a PyTorch user makes...
import ember.nn as nn
import ember.nn.functional as F
import ember.optim as optim
from ember.datasets import Digits           # ...plus an offline dataset
from ember.optim.lr_scheduler import StepLR
from ember.utils.data import DataLoader


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 32, 3, 1, padding=1)   # 8x8 -> 8x8
        self.conv2 = nn.Conv2d(32, 64, 3, 1)             # 8x8 -> 6x6
        self.dropout1 = nn.Dropout(0.25)
        self.dropout2 = nn.Dropout(0.5)
        self.fc1 = nn.Linear(64 * 3 * 3, 128)
        self.fc2 = nn.Linear(128, 10)

    def forward(self, x):
        x = F.relu(self.conv1(x))
        x = F.relu(self.conv2(x))
        x = F.max_pool2d(x, 2)                           # 6x6 -> 3x3
        x = self.dropout1(x)
        x = torch.flatten(x, 1)
        x = F.relu(self.fc1(x))
        x = self.dropout2(x)
        return F.log_softmax(self.fc2(x), dim=1)


def train(model, loader, optimizer, epoch, log_interval):
    model.train()
    for batch_idx, (data, target) in enumerate(loader):
        optimizer.zero_grad()
        loss = F.nll_loss(model(data), target)
        loss.backward()
        optimizer.step()
        if batch_idx % log_interval == 0:
            print(f"Train Epoch: {epoch} [{batch_idx * len(data)}/{len(loader.dataset)}]"
                  f"\tLoss: {loss.item():.6f}")


def test(model, loader):
    model.eval()
    test_loss, correct = 0.0, 0
    with torch.no_grad():
        for data, target in loader:
            output = model(data)
            test_loss += F.nll_loss(output, target, reduction="sum").item()
            correct += (output.argmax(dim=1) == target).sum().item()
    n = len(loader.dataset)
    print(f"\nTest set: Average loss: {test_loss / n:.4f}, "
          f"Accuracy: {correct}/{n} ({100.0 * correct / n:.1f}%)\n")
    return correct / n


def main(argv=None):
    ap = argparse.ArgumentParser(description="ember digits example (PyTorch style)")
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--test-batch-size", type=int, default=1000)
    ap.add_argument("--epochs", type=int, default=14)
    ap.add_argument("--lr", type=float, default=1.0)
    ap.add_argument("--gamma", type=float, default=0.7)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--log-interval", type=int, default=10)
    ap.add_argument("--save-model", action="store_true")
    args = ap.parse_args(argv)
    torch.manual_seed(args.seed)

    train_loader = DataLoader(Digits(train=True), batch_size=args.batch_size, shuffle=True)
    test_loader = DataLoader(Digits(train=False), batch_size=args.test_batch_size)
    model = Net()
    optimizer = optim.Adadelta(model.parameters(), lr=args.lr)
    scheduler = StepLR(optimizer, step_size=1, gamma=args.gamma)
    t0 = time.perf_counter()
    acc = 0.0
    for epoch in range(1, args.epochs + 1):
        train(model, train_loader, optimizer, epoch, args.log_interval)
        acc = test(model, test_loader)
        scheduler.step()
    print(f"trained {args.epochs} epochs in {time.perf_counter() - t0:.1f} s; "
          f"test accuracy {100 * acc:.1f}%")
    if args.save_model:
        torch.save(model.state_dict(), "digits_cnn.safetensors")
    return acc


if __name__ == "__main__":
    main()
