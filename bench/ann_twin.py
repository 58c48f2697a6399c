"""Train the ANN twin of a zoo network: the same layers with ReLU, the same recipe, the same images.

The twin replaces every STCB by its synapse followed by ReLU (the output
layer: no ReLU, its outputs are the logits), takes the image as
``pixel * input_scale`` (the input layer's current, unrounded) and trains
with the spiking network's recipe (``TrainConfig`` defaults: AdamW lr 3e-3,
weight decay 1e-4, cosine schedule, batch 32, half of the images moved by up
to one pixel, the same seed, split and epoch order generator). It prints the
test accuracy (or, with --validation, the accuracy on the validation split
carved from the training split, as ``slssnn train --validation`` does), to
compare with the deployed SNN (issue 12: within 1.0 point).

    OMP_NUM_THREADS=1 .venv/bin/python bench/ann_twin.py --dataset mnist --epochs 3 [--validation]
"""

from __future__ import annotations

import argparse
import json
import time

import torch
import torch.nn.functional as F
from torch import nn

from slssnn.training.datasets import Split, load_dataset, validation_split
from slssnn.training.models import MODEL_CONFIGS, ModelConfig
from slssnn.training.trainer import TrainConfig, build_schedule, epoch_batches


def ann_twin(config: ModelConfig) -> nn.Sequential:
    """The network of ``config`` with ReLU in place of the spiking neurons."""
    layers: list[nn.Module] = []
    channels, height, width = config.input_shape
    features = 0
    blocks = [s for s in config.layers if s["type"] != "flatten"]
    for spec in config.layers:
        if spec["type"] == "flatten":
            layers.append(nn.Flatten())
            features = channels * height * width
            continue
        if spec["type"] == "conv":
            conv = nn.Conv2d(channels, spec["out_channels"], spec["kernel"],
                             stride=spec.get("stride", 1), padding=spec.get("padding", 0),
                             bias=config.bias)
            height = (height + 2 * conv.padding[0] - conv.kernel_size[0]) // conv.stride[0] + 1
            width = (width + 2 * conv.padding[1] - conv.kernel_size[1]) // conv.stride[1] + 1
            channels = spec["out_channels"]
            layers.append(conv)
        else:
            layers.append(nn.Linear(features, spec["out_features"], bias=True))
            features = spec["out_features"]
        if spec is not blocks[-1]:
            layers.append(nn.ReLU())
    return nn.Sequential(*layers)


def accuracy(model: nn.Module, split: Split, scale: float) -> float:
    model.eval()
    with torch.no_grad():
        preds = torch.cat([model(split.images[i:i + 256].float() * scale).argmax(1)
                           for i in range(0, len(split.labels), 256)])
    return float((preds == split.labels).float().mean())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="mnist")
    parser.add_argument("--epochs", type=int, default=TrainConfig.epochs)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--validation", action="store_true")
    args = parser.parse_args()
    recipe = TrainConfig(dataset=args.dataset, epochs=args.epochs, seed=args.seed)
    config = MODEL_CONFIGS[args.dataset](recipe.timesteps)
    data = load_dataset(args.dataset, None, recipe.timesteps)
    train, evaluation = data.train, data.test
    if args.validation:
        train, evaluation = validation_split(train)
    torch.manual_seed(args.seed)
    model = ann_twin(config)
    optimizer = torch.optim.AdamW(model.parameters(), lr=recipe.lr,
                                  weight_decay=recipe.weight_decay)
    steps = -(-len(train.labels) // recipe.batch_size)
    schedule = build_schedule(optimizer, recipe.epochs * steps, 0)
    generator = torch.Generator().manual_seed(args.seed)
    started = time.perf_counter()
    history = []
    for epoch in range(recipe.epochs):
        model.train()
        for images, labels in epoch_batches(train, recipe, generator):
            loss = F.cross_entropy(model(images.float() * config.input_scale), labels)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            schedule.step()
        history.append(accuracy(model, evaluation, config.input_scale))
        print(f"epoch {epoch + 1}: {'validation' if args.validation else 'test'} accuracy "
              f"{history[-1]:.4f} ({time.perf_counter() - started:.0f} s)", flush=True)
    print(json.dumps({"dataset": args.dataset, "epochs": args.epochs, "seed": args.seed,
                      "split": "validation" if args.validation else "test",
                      "ann_twin_accuracy": history[-1], "history": history}))


if __name__ == "__main__":
    main()
