"""`--mixed_precision=auto` picks by the machine and the model, as benchmarks.mixed_precision measured."""

import pytest
import tensorflow as tf

from trainers import precision

BERT_MINI = {"hidden_dim": 256, "num_heads": 4}
BERT_TINY = {"hidden_dim": 128, "num_heads": 2}
GRU = {"hidden_dim": 256}  # A recurrent model: no attention heads.


def test_cpu_bf16_units_are_read_from_the_flags(tmp_path):
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("processor\t: 0\nflags\t\t: fpu avx2 avx512f avx512_bf16\n\nprocessor\t: 1\nflags\t\t: fpu\n")
    assert precision.cpu_has_bf16_units(cpuinfo)
    cpuinfo.write_text("processor\t: 0\nflags\t\t: fpu avx2 avx512f amx_tile\n")
    assert not precision.cpu_has_bf16_units(cpuinfo)
    assert not precision.cpu_has_bf16_units(tmp_path / "absent")  # Not Linux.


@pytest.mark.parametrize("bf16_units, model, jit_compile, policy, reason", [
    (True, BERT_MINI, False, "mixed_bfloat16", "an encoder of hidden size 256"),
    (True, BERT_TINY, False, "float32", "bf16 pays only for encoders of hidden size 256+"),
    (True, GRU, False, "float32", "bf16 pays only for encoders"),
    (True, BERT_MINI, True, "float32", "with XLA bf16 measured slower"),
    (False, BERT_MINI, False, "float32", "a CPU without bf16 units"),
])
def test_on_a_cpu_bf16_only_where_it_was_measured_faster(bf16_units, model, jit_compile, policy, reason, monkeypatch):
    monkeypatch.setattr(precision, "cpu_has_bf16_units", lambda: bf16_units)
    chosen, why = precision.auto_policy(tf.distribute.get_strategy(), model, jit_compile)
    assert chosen == policy and reason in why


@pytest.mark.parametrize("capability, policy", [((8, 0), "mixed_float16"), ((6, 1), "float32")])
def test_a_gpu_with_tensor_cores_gets_float16(capability, policy, monkeypatch):
    monkeypatch.setattr(tf.config, "list_physical_devices", lambda kind=None: ["GPU:0"] if kind == "GPU" else [])
    monkeypatch.setattr(tf.config.experimental, "get_device_details", lambda device: {"compute_capability": capability})
    chosen, why = precision.auto_policy(tf.distribute.get_strategy(), BERT_MINI, jit_compile=True)
    assert chosen == policy and f"compute capability {capability[0]}.{capability[1]}" in why
