import torch

import slssnn

torch.manual_seed(0)  # initial weights and shuffling
data = slssnn.load_dataset("digits")  # or "my_data.npz", or slssnn.dataset_from_arrays(...)
config = slssnn.ModelConfig(
    name="tiny", input_shape=(1, 8, 8), num_classes=10, timesteps=4,
    layers=[{"type": "conv", "out_channels": 16, "kernel": 3, "stride": 2, "padding": 1},
            {"type": "flatten"},
            {"type": "dense", "out_features": 10, "clamp_slope": 0.02}])
model = slssnn.build_model(config)  # a torch.nn.Module
optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(*data.train),
                                     batch_size=32, shuffle=True)
for _ in range(3):  # epochs
    for images, labels in loader:
        counts, spikes = model(images)  # output spike counts (B, 10); every layer's spikes
        loss = slssnn.count_loss(counts, labels, config.timesteps)  # cross-entropy on counts
        optimizer.zero_grad()
        loss.backward()  # the STCB equivalent gradient
        optimizer.step()

slssnn.export_network(model, "tiny.net")  # lava-dl netx HDF5, on Loihi's integer grid
run = slssnn.run_network("tiny.net", data, backend="emulator")  # or backend="lava"
print(f"deployed accuracy: {run['accuracy']:.3f} on {run['samples']} test images")
energy = slssnn.energy_report(run, "tiny-energy")  # energy.json, energy.md, energy.png
print(f"loihi estimate: {energy['j_per_inference']['loihi SNN'] * 1e9:.0f} nJ per inference")
