"""`--jit_compile=auto` compiles the train step with XLA only where benchmarks measured it faster."""

import pytest
import tensorflow as tf

from trainers import config as config_lib
from trainers import xla

BERT_MINI = {"hidden_dim": 256, "num_heads": 4}
BERT_TINY = {"hidden_dim": 128, "num_heads": 2}  # And the transformer's SST-2 sizes.
GRU = {"hidden_dim": 256}  # Wide, but without attention.


@pytest.mark.parametrize("strategy, model, task, precision, compiled, reason", [
    ("default", BERT_MINI, "classify", "float32", True, "an encoder 256 wide"),
    ("one_device", {"hidden_dim": 512, "num_heads": 8}, "classify", "float32", True, "an encoder 512 wide"),
    ("default", BERT_TINY, "classify", "float32", False, "an encoder 128 wide"),
    ("default", GRU, "classify", "float32", False, "a model without attention"),
    ("default", {"filters": [32, 64]}, "classify", "float32", False, "a model without attention"),  # The CNN.
    ("mirrored", BERT_MINI, "classify", "float32", False, "the mirrored strategy"),
    ("default", BERT_MINI, "pretrain", "float32", False, "the pretrain task"),
    ("default", BERT_MINI, "classify", "mixed_bfloat16", False, "--mixed_precision=mixed_bfloat16"),
    ("default", BERT_MINI, "classify", "auto", False, "--mixed_precision=auto"),
])
def test_xla_only_where_it_was_measured_faster(strategy, model, task, precision, compiled, reason):
    chosen, why = xla.auto_jit_compile(strategy, model, task, precision)
    assert chosen is compiled and reason in why


def test_a_gpu_is_left_to_the_flag(monkeypatch):
    monkeypatch.setattr(tf.config, "list_physical_devices", lambda kind=None: ["GPU:0"] if kind == "GPU" else [])
    chosen, why = xla.auto_jit_compile("default", BERT_MINI, "classify", "float32")
    assert not chosen and "--jit_compile" in why


@pytest.mark.parametrize("model, asked, resolved", [
    ("bert_mini", "auto", True), ("bert", "auto", False), ("bert_mini", False, False), ("bert", True, True),
])
def test_resolve_decides_auto_and_keeps_what_the_config_names(model, asked, resolved):
    values = config_lib.default_values(model)
    values["train"]["jit_compile"] = asked
    config, reason = xla.resolve(config_lib.config_from_dict(values))
    assert config.train.jit_compile is resolved
    assert (reason is None) == (asked != "auto")
