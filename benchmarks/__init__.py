"""Speed and accuracy measurements of the zoo (not tests): `python -m benchmarks.NAME`.

    train_throughput   train-step examples/s and GFLOP/s, zoo against Keras / keras-hub peers
    input_pipeline     batches/s of each model's tf.data input alone against its training step
    serving            latency and memory of an exported SavedModel in a fresh process
    accuracy           real datasets (sst2_local, mnist_local) through `trainers.run`

Each run writes `benchmarks/results/<name>/<timestamp>.json` and rewrites its own section of
BENCHMARKS.md from that file.
"""
