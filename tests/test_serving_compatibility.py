"""Which TF Serving releases load an export: the op inventory, the table, `python -m zoo.serving check`, and
BERT's core-op packing (the same answers as the keras-hub packer whose TFText>RoundRobinTrim they replace)."""

import subprocess
import sys

import keras
import keras_hub
import numpy as np
import pytest
import tensorflow as tf

import zoo
from zoo.data.text import RESERVED_TOKENS, TextPreprocessor
from zoo.export import export_saved_model, serving_input_spec
from zoo.serving import compatibility

VOCABULARY = RESERVED_TOKENS + ["a", "good", "bad", "movie", "is", "it", "?", "not", "film", "##s"]
SEQUENCE_LENGTH = 12
PORTABLE_OPS = ["CaseFoldUTF8", "FastWordpieceTokenizeWithOffsets", "RegexSplitWithOffsets"]
# Single texts and pairs around the truncation budget (12 - 2 special tokens, or 12 - 3 for pairs).
TEXTS = ["", "a good movie", "it is not a bad film " * 3, "goods ? " * 9, "a", "movies movie movie is"]
PAIRS = ["is it good ?", "", "a movie " * 6, "bad", "not a good film it is " * 2, "a bad bad film"]


class KerasHubPackingPreprocessor(keras.layers.Layer):
    """The BERT preprocessing of exports before core-op packing: keras-hub's MultiSegmentPacker."""

    def __init__(self, vocabulary, sequence_length, **kwargs):
        super().__init__(**kwargs)
        self.tokenizer = keras_hub.tokenizers.WordPieceTokenizer(vocabulary=vocabulary, lowercase=True)
        self.packer = keras_hub.layers.MultiSegmentPacker(
            sequence_length=sequence_length, start_value=vocabulary.index("[CLS]"),
            end_value=vocabulary.index("[SEP]"), pad_value=0,
        )
        self.built = True

    def call(self, text, text_pair=None):
        segments = tuple(self.tokenizer(texts) for texts in (text, text_pair) if texts is not None)
        token_ids, segment_ids = self.packer(segments)
        return {"token_ids": token_ids, "segment_ids": segment_ids, "padding_mask": tf.cast(token_ids != 0, tf.int32)}


@pytest.fixture(scope="module")
def exports(tmp_path_factory):
    """{(packing, pair): version_dir}: one BERT with large random weights (every token moves its outputs),
    exported with each packing, for single texts and for pairs."""
    model = zoo.build("bert", vocabulary_size=len(VOCABULARY), hidden_dim=16, num_heads=2, intermediate_dim=32,
                      max_sequence_length=SEQUENCE_LENGTH)
    preprocessors = {
        "core": TextPreprocessor(VOCABULARY, sequence_length=SEQUENCE_LENGTH, output_format="bert"),
        "keras_hub": KerasHubPackingPreprocessor(VOCABULARY, SEQUENCE_LENGTH),
    }
    model(preprocessors["core"](tf.constant(TEXTS), tf.constant(PAIRS)))
    rng = np.random.default_rng(0)
    for weight in model.weights:
        weight.assign(rng.normal(0, 0.5, weight.shape).astype(np.float32))
    export_dir = tmp_path_factory.mktemp("exports")
    return {
        (packing, pair): export_saved_model(
            model, preprocessor, serving_input_spec("bert", text_pair=pair), export_dir=export_dir,
            model_name=f"{packing}_{'pair' if pair else 'single'}", encoder=model.encoder,
        )
        for packing, preprocessor in preprocessors.items()
        for pair in (False, True)
    }


@pytest.mark.parametrize("pair", [False, True], ids=["single", "pair"])
def test_core_op_packing_answers_as_the_keras_hub_packer_export(exports, pair):
    inputs = {"text": tf.constant(TEXTS), **({"text_pair": tf.constant(PAIRS)} if pair else {})}
    core, keras_hub_packed = (tf.saved_model.load(str(exports[packing, pair])) for packing in ("core", "keras_hub"))
    for signature, output in [("serving_default", "probabilities"), ("encode", "pooled_output")]:
        expected = keras_hub_packed.signatures[signature](**inputs)[output].numpy()
        actual = core.signatures[signature](**inputs)[output].numpy()
        np.testing.assert_allclose(actual, expected, atol=1e-6, rtol=0)
        assert np.abs(expected - expected[:1]).max() > 1e-3  # The texts give different answers: a real comparison.


def test_core_op_packing_equals_the_keras_hub_packer_token_for_token():
    """Every length pair around the budget, at sequence lengths where a pair keeps no token at all."""
    from zoo.data.text import pack_segments

    rng = np.random.default_rng(1)
    for sequence_length in (3, 4, 7, 12):
        packer = keras_hub.layers.MultiSegmentPacker(sequence_length=sequence_length, start_value=2, end_value=3,
                                                     pad_value=0)
        for segment_count in (1, 2):
            segments = [tf.ragged.constant([rng.integers(5, 50, length).tolist() for length in range(15)], tf.int32)
                        for _ in range(segment_count)]
            segments[-1] = tf.reverse(segments[-1], axis=[0])  # Pair long texts with short ones.
            expected = packer(tuple(segments))
            actual = pack_segments(segments, sequence_length=sequence_length, start_id=2, end_id=3, pad_id=0)
            for got, want in zip(actual, expected):
                np.testing.assert_array_equal(got.numpy(), want.numpy())


def test_inventory_lists_only_the_tensorflow_text_ops_tf_serving_has_linked_since_2_11(exports):
    for pair in (False, True):
        reports = compatibility.op_inventory(exports["core", pair])
        assert [report.name for report in reports] == PORTABLE_OPS
        assert all(report.kind == compatibility.TENSORFLOW_TEXT for report in reports)
        assert compatibility.loading_releases(reports) == compatibility.tf_serving_releases()
    old = {report.name: report for report in compatibility.op_inventory(exports["keras_hub", True])}
    assert old["TFText>RoundRobinTrim"].introduced == "2.12.0"
    # TF Serving 2.12 to 2.19 link tensorflow-text 2.12.1, whose ops_lib lacks the trimmer (tensorflow/serving#2267).
    assert old["TFText>RoundRobinTrim"].releases == ("2.20.0",)


def test_table_names_its_sources_and_each_release_its_tensorflow():
    table = compatibility.load_table()
    header = compatibility.TABLE_PATH.read_text().split("\ntf_serving_releases:")[0]
    for source in ("github.com/tensorflow/serving", "workspace.bzl", "github.com/tensorflow/text", "ops_lib",
                   "tensorflow-cpu 2.11.0"):
        assert source in header
    for release, facts in table["tf_serving_releases"].items():
        assert facts["tensorflow"] == release.rsplit(".", 1)[0]
    assert "DisableCopyOnRead" not in table["core_ops_added_after_tensorflow_2_11"]  # Every export has it.
    assert "DisableCopyOnRead" in dir(tf.raw_ops)


def _zoo_serving(*args):
    return subprocess.run([sys.executable, "-m", "zoo.serving", *args], capture_output=True, text=True, timeout=180)


def test_check_command_prints_the_ops_and_the_oldest_release(exports):
    result = _zoo_serving("check", str(exports["core", True].parent), "--tf_serving=2.13")
    assert result.returncode == 0, result.stderr[-2000:]
    lines = result.stdout.splitlines()
    assert lines[0] == f"{exports['core', True]}: 3 op(s) beyond core TensorFlow 2.11"
    for op, line in zip(PORTABLE_OPS, lines[1:4]):
        assert line.split()[0] == op and "loaded by TF Serving 2.11.0 to 2.20.0" in line
    assert lines[4] == "Loads in TF Serving 2.11.0 to 2.20.0 (of 18 releases in ops_table.yaml); oldest: 2.11.0"
    assert lines[5] == "TF Serving 2.13: loads it (2.13.1)"


@pytest.mark.parametrize(
    "args, message",
    [
        (["keras_hub_pair", "--tf_serving=2.19"],
         "error: TF Serving 2.19 cannot load {version_dir}: op TFText>RoundRobinTrim (tensorflow-text 2.12.0) is not "
         "registered there; TF Serving 2.20.0 can"),
        (["core_single", "--tf_serving=2.9"],
         "error: --tf_serving=2.9 is not a TF Serving release in ops_table.yaml; it knows 2.11.0, 2.11.1, "),
        (["nowhere"], "error: {export_dir}/nowhere is neither a SavedModel nor a directory of numbered versions"),
    ],
    ids=["release-cannot-load", "unknown-release", "no-export"],
)
def test_check_command_errors_are_one_line_with_exit_code_2(exports, args, message):
    export_dir = exports["core", False].parent.parent
    version_dir = export_dir / args[0] / "1"
    result = _zoo_serving("check", str(export_dir / args[0]), *args[1:])
    assert result.returncode == 2, result.stdout
    assert result.stderr.splitlines()[-1].startswith(message.format(version_dir=version_dir, export_dir=export_dir))
    assert "Traceback" not in result.stderr
