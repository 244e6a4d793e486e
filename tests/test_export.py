"""Exports land as the next integer version, atomically, never replacing an existing one."""

import keras
import numpy as np
import tensorflow as tf

from zoo.data.images import ImagePreprocessor
from zoo.export import export_saved_model, serving_input_spec


def _tiny_image_model():
    model = keras.Sequential([keras.layers.Flatten(), keras.layers.Dense(3)])
    model(np.zeros([1, 4, 4, 1], np.float32))
    return model


def test_each_export_adds_a_version_and_leaves_no_temporary(tmp_path):
    model, preprocessor = _tiny_image_model(), ImagePreprocessor()
    spec = serving_input_spec("image", [4, 4, 1])
    first = export_saved_model(model, preprocessor, spec, export_dir=tmp_path, model_name="tiny")
    first_mtime = (first / "saved_model.pb").stat().st_mtime_ns
    second = export_saved_model(model, preprocessor, spec, export_dir=tmp_path, model_name="tiny")
    assert [first.name, second.name] == ["1", "2"]
    assert (first / "saved_model.pb").stat().st_mtime_ns == first_mtime
    assert sorted(path.name for path in (tmp_path / "tiny").iterdir()) == ["1", "2"]


def test_serving_signature_returns_probabilities_and_class_id(tmp_path):
    model, preprocessor = _tiny_image_model(), ImagePreprocessor()
    version_dir = export_saved_model(
        model, preprocessor, serving_input_spec("image", [4, 4, 1]), export_dir=tmp_path, model_name="tiny"
    )
    serving = tf.saved_model.load(str(version_dir)).signatures["serving_default"]
    images = np.random.default_rng(0).uniform(0, 255, [5, 4, 4, 1]).astype(np.float32)
    outputs = serving(image=tf.constant(images))
    expected = tf.nn.softmax(model(images)).numpy()
    np.testing.assert_allclose(outputs["probabilities"].numpy(), expected, atol=1e-6)
    np.testing.assert_array_equal(outputs["class_id"].numpy(), expected.argmax(-1))


def test_a_bert_pair_task_serves_text_and_text_pair_tokenized_in_the_graph(tmp_path):
    """Sentence pairs: `[CLS] text [SEP] text_pair [SEP]`, segment ids 0 then 1, as in training."""
    import zoo
    from zoo.data.text import RESERVED_TOKENS, TextPreprocessor

    vocabulary = RESERVED_TOKENS + ["a", "good", "bad", "movie", "is", "it", "?"]
    preprocessor = TextPreprocessor(vocabulary, sequence_length=12, output_format="bert")
    model = zoo.build("bert", vocabulary_size=len(vocabulary), hidden_dim=16, num_heads=2, intermediate_dim=32,
                      max_sequence_length=12)
    texts, pairs = ["a good movie", "it is bad"], ["is it good ?", "a movie"]
    model(preprocessor(tf.constant(texts), tf.constant(pairs)))
    rng = np.random.default_rng(0)
    for weight in model.weights:  # Large random weights: every input token visibly moves the outputs.
        weight.assign(rng.normal(0, 0.5, weight.shape).astype(np.float32))
    expected = tf.nn.softmax(model(preprocessor(tf.constant(texts), tf.constant(pairs)))).numpy()
    version_dir = export_saved_model(model, preprocessor, serving_input_spec("bert", text_pair=True),
                                     export_dir=tmp_path, model_name="pairs", encoder=model.encoder)
    serving = tf.saved_model.load(str(version_dir)).signatures["serving_default"]
    assert set(serving.structured_input_signature[1]) == {"text", "text_pair"}
    outputs = serving(text=tf.constant(texts), text_pair=tf.constant(pairs))
    np.testing.assert_allclose(outputs["probabilities"].numpy(), expected, atol=1e-5)
    encode = tf.saved_model.load(str(version_dir)).signatures["encode"]
    pooled = encode(text=tf.constant(texts), text_pair=tf.constant(pairs))["pooled_output"].numpy()
    np.testing.assert_allclose(pooled, model.encoder(preprocessor(tf.constant(texts), tf.constant(pairs)))["pooled_output"],
                               atol=1e-5)
    swapped = encode(text=tf.constant(pairs), text_pair=tf.constant(texts))["pooled_output"].numpy()
    assert np.abs(swapped - pooled).max() > 1e-3  # Which text is A and which is B matters.
