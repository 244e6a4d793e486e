"""`--mixed_precision=auto`: the dtype policy that trains faster where the run is, by measured rules.

- TPU: `mixed_bfloat16`, the TPU's native matmul type.
- NVIDIA GPU with tensor cores (compute capability 7.0 and up): `mixed_float16`, with loss scaling.
  An older GPU: `float32`.
- CPU: `mixed_bfloat16` only where `benchmarks.mixed_precision` measured it faster
  (BENCHMARKS.md, "float32 against mixed_bfloat16"; batch 32 x 128 on an AMD EPYC with AVX512-BF16
  and on an Intel Xeon with AMX): a CPU with bf16 units (the avx512_bf16 or amx_bf16 flag), a
  Transformer encoder of hidden size 256 and up (BERT-Mini's whole step 1.20x EPYC / 1.26x Xeon,
  BERT-Small's 1.42x / 1.81x; BERT-Tiny's, at 128, 0.98x / 1.07x), and no XLA (with XLA the bf16
  step measured slower than float32 on both: 0.67-0.91x). Everything else, and every model without
  attention (unmeasured), stays `float32`.
"""

import pathlib

import tensorflow as tf

AUTO = "auto"
BF16_CPU_FLAGS = ("avx512_bf16", "amx_bf16")
BF16_MIN_HIDDEN_DIM = 256  # The smallest encoder width at which bf16 measured faster on a CPU.
TENSOR_CORE_CAPABILITY = (7, 0)


def cpu_has_bf16_units(cpuinfo=pathlib.Path("/proc/cpuinfo")) -> bool:
    """Whether the CPU lists a bf16 instruction set (Linux; elsewhere, as on macOS: False)."""
    if not cpuinfo.exists():
        return False
    flags = set()
    for line in cpuinfo.read_text().splitlines():
        if line.startswith("flags"):
            flags.update(line.split(":", 1)[1].split())
    return any(flag in flags for flag in BF16_CPU_FLAGS)


def auto_policy(strategy, model_config, jit_compile) -> tuple[str, str]:
    """The policy `auto` stands for on this machine, and why, for the run's log line.

    Args:
        strategy: the run's tf.distribute strategy.
        model_config: the model section's fields (`hidden_dim`, `num_heads` for an encoder).
        jit_compile: bool, whether the train step is compiled with XLA.
    """
    if isinstance(strategy, tf.distribute.TPUStrategy):
        return "mixed_bfloat16", "a TPU"
    gpus = tf.config.list_physical_devices("GPU")
    if gpus:
        capability = tf.config.experimental.get_device_details(gpus[0]).get("compute_capability", (0, 0))
        if tuple(capability) >= TENSOR_CORE_CAPABILITY:
            return "mixed_float16", f"a GPU with tensor cores (compute capability {capability[0]}.{capability[1]})"
        return "float32", f"a GPU without tensor cores (compute capability {capability[0]}.{capability[1]})"
    if not cpu_has_bf16_units():
        return "float32", "a CPU without bf16 units"
    if jit_compile:
        return "float32", "a CPU with bf16 units, but with XLA bf16 measured slower there"
    if "num_heads" not in model_config or model_config.get("hidden_dim", 0) < BF16_MIN_HIDDEN_DIM:
        return "float32", f"a CPU with bf16 units, but bf16 pays only for encoders of hidden size {BF16_MIN_HIDDEN_DIM}+"
    return "mixed_bfloat16", f"a CPU with bf16 units and an encoder of hidden size {model_config['hidden_dim']}"
