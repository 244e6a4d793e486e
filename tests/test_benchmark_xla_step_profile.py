"""`benchmarks.xla_step_profile` attributes each XLA thunk's time to the op it came from.

Run in a subprocess from the repository root, as the other benchmark tests are (the module sets
XLA_FLAGS before TensorFlow starts, so it must be the first to import TensorFlow).
"""

import json
import subprocess
import sys

from cli_runs import REPO

# A compiled function with a named matmul, profiled as the benchmark profiles a train step; prints
# its breakdown by stage and part.
PROFILE_A_FUNCTION = """
import glob, json
from benchmarks import xla_step_profile as profile
import tensorflow as tf

@tf.function(jit_compile=True)
def step(x, w):
    with tf.name_scope("feedforward_intermediate_dense"):
        y = tf.matmul(x, w)
    return tf.reduce_sum(tf.tanh(y))  # Not a plain sum, which XLA would fold into the matmul.

x, w = tf.ones([512, 512]), tf.ones([512, 512])
call = lambda: float(step(x, w))
call()
modules = [profile.read_hlo_metadata(path) for path in glob.glob(profile.DUMP_DIRECTORY + "/*after_optimizations.txt")]
thunks, wall = profile.profile_side(call, 3)
print(json.dumps(profile.breakdown(thunks, profile.module_for(thunks, modules))))
"""

# Optimized HLO as XLA dumps it: an instruction with metadata, a fusion without (it takes that of
# its computation's first instruction), a reduction named after its layer's scope, and a fusion
# making uint32 words (a mask's random bits, named after nothing).
DUMP = """\
%fused_computation.1 (param_0: f32[4,8]) -> f32[4,8] {
  %param_0 = f32[4,8]{1,0} parameter(0)
  ROOT %multiply.3 = f32[4,8]{1,0} multiply(%param_0, %param_0), metadata={op_type="Mul" op_name="model/dropout_1/mul"}
}
%wrapped_reduce-window_computation.2 (param_0.9: f32[4,8], param_1.9: f32[]) -> f32[4,1] {
  ROOT %reduce-window.2 = f32[4,1]{1,0} reduce-window(%param_0.9, %param_1.9), window={size=1x8 stride=1x8}, to_apply=%model_layer_norm_1_moments_variance-reduction.4
}
%fused_computation.7 (param_0.5: u64[2]) -> u32[4,8] {
  %param_0.5 = u64[2]{0} parameter(0)
  ROOT %iota.1 = u32[4,8]{1,0} iota(), iota_dimension=1
}
ENTRY %main.10 (Arg_0.1: f32[4,8], Arg_1.2: f32[8,8], state: u64[2]) -> f32[4,8] {
  %MatMul.5 = f32[4,8]{1,0} dot(%Arg_0.1, %Arg_1.2), lhs_contracting_dims={1}, rhs_contracting_dims={0}, metadata={op_type="MatMul" op_name="model/feedforward_output_dense_1/MatMul"}
  %multiply_fusion = f32[4,8]{1,0} fusion(%MatMul.5), kind=kLoop, calls=%fused_computation.1
  %wrapped_reduce-window = f32[4,1]{1,0} call(%multiply_fusion), to_apply=%wrapped_reduce-window_computation.2
  %concatenate_bitcast_fusion = u32[4,8]{1,0} fusion(%state), kind=kLoop, calls=%fused_computation.7
  ROOT %tuple = (f32[4,8]) tuple(%multiply_fusion)
}
"""

READ_A_DUMP = """
import json, sys
from benchmarks.xla_step_profile import read_hlo_metadata
metadata = read_hlo_metadata(sys.argv[1])
print(json.dumps({name: metadata.get(name) for name in
                  ["MatMul.5", "multiply_fusion", "wrapped_reduce-window", "concatenate_bitcast_fusion"]}))
"""

CLASSIFY_NAMES = """
import json
from benchmarks.xla_step_profile import classify
names = [
    ("MatMul", "gradient_tape/bert_classifier_1/encoder_1/transformer_layer_3_1/feedforward_intermediate_dense_1/Tensordot/MatMul/MatMul"),
    ("AssignAddVariableOp", "layerwise_decay_adam_w/AssignAddVariableOp_125"),
    ("Softmax", "bert_classifier_1/encoder_1/transformer_layer_0_1/self_attention_layer_1/softmax_1/Softmax"),
    ("MatMul", "bert_classifier_1/encoder_1/transformer_layer_0_1/self_attention_layer_1/query_1/MatMul"),
    ("Einsum", "bert_classifier_1/encoder_1/transformer_layer_0_1/self_attention_layer_1/einsum/Einsum"),
    ("", "bert_classifier_1_encoder_1_embeddings_layer_norm_1_moments_variance-reduction.4"),
    ("StatelessRandomUniformFullIntV2", "bert_classifier_1/encoder_1/transformer_layer_1_1/dropout_5_1/stateless_random_uniform"),
    ("AddN", "AddN_9"),
    ("SparseSoftmaxCrossEntropyWithLogits", "SparseSoftmaxCrossEntropyWithLogits/SparseSoftmaxCrossEntropyWithLogits"),
]
print(json.dumps([classify(*name) for name in names]))
"""


def run_in_repository(script, *args):
    result = subprocess.run([sys.executable, "-c", script, *args], cwd=REPO, capture_output=True, text=True, check=True)
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_a_dumps_thunks_get_the_tensorflow_op_they_came_from(tmp_path):
    dump = tmp_path / "module.cpu_after_optimizations.txt"
    dump.write_text(DUMP)
    assert run_in_repository(READ_A_DUMP, str(dump)) == {
        "MatMul.5": ["MatMul", "model/feedforward_output_dense_1/MatMul"],
        "multiply_fusion": ["Mul", "model/dropout_1/mul"],
        "wrapped_reduce-window": ["", "model_layer_norm_1_moments_variance-reduction.4"],
        "concatenate_bitcast_fusion": ["RngBitGenerator", "random bits"],
    }


def test_ops_are_put_in_their_stage_and_part_by_name():
    rest = "the rest (loss, pooler, head, gradient sums)"
    assert run_in_repository(CLASSIFY_NAMES) == [
        ["backward", "feed-forward"],
        ["update", rest],
        ["forward", "attention softmax"],
        ["forward", "attention projections"],
        ["forward", "attention scores and context"],
        ["forward", "layer norm"],
        ["forward", "dropout: drawing masks"],
        ["backward", rest],
        ["forward", rest],
    ]


def test_a_compiled_functions_thunks_are_timed_and_attributed_to_their_ops():
    seconds = run_in_repository(PROFILE_A_FUNCTION)
    # The 512^3 matmul takes measurable time, in the part its scope names.
    assert seconds.get("forward / feed-forward", 0) > 0
    assert all(value >= 0 for value in seconds.values())
