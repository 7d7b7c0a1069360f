"""Notebook-style quickstart: a PyTorch model in memory -> integer SNN, simulated, verified
on Lava and reported, without saving the model (examples/notebook/README.md)."""

import torch
from torch import nn

import neurodeploy as nd

torch.manual_seed(0)
images, labels = nd.dataset("digits", split="train")
x, y = torch.as_tensor(images), torch.as_tensor(labels)
model = nn.Sequential(nn.Flatten(), nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 10))
optimizer = torch.optim.Adam(model.parameters(), lr=0.02)
for _ in range(60):  # a few full-batch steps: enough for a demo
    optimizer.zero_grad()
    nn.functional.cross_entropy(model(x), y).backward()
    optimizer.step()

snn = nd.compile(model, calib=x[:256], target="loihi2", timesteps=4)  # a tensor calibrates
test_x, test_y = nd.dataset("digits", limit=64)
print("predictions", snn.simulate(test_x[:8]).outputs.argmax(1), "labels", test_y[:8])
print("accuracy per T", snn.evaluate(test_x, test_y, timesteps=[1, 2, 4]))
print(snn.verify(test_x[:2], backend="lava"))  # Lava == reference, every spike and membrane
print("report:", *snn.report(test_x, test_y).write("quickstart_report"))
