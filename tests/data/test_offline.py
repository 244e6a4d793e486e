"""The project's offline tfds datasets build without a network, deterministically, as documented."""

import collections
import os
import pathlib
import re
import subprocess
import sys

import numpy as np
import pytest
import tensorflow_datasets as tfds
from sklearn.feature_extraction.text import CountVectorizer
from sklearn.linear_model import LogisticRegression

from zoo.data import offline  # noqa: F401  (registers the builders)


def _build(name, data_dir):
    builder = tfds.builder(name, data_dir=str(data_dir))
    builder.download_and_prepare()
    return builder


def _examples(builder, split):
    return list(tfds.as_numpy(builder.as_dataset(split=split, shuffle_files=False)))


@pytest.fixture(scope="module")
def digits(tmp_path_factory):
    return _build("zoo_digits", tmp_path_factory.mktemp("tfds"))


@pytest.fixture(scope="module")
def sentiment(tmp_path_factory):
    return _build("zoo_sentiment", tmp_path_factory.mktemp("tfds"))


def test_digits_features_and_splits(digits):
    assert digits.info.splits["train"].num_examples == 1437
    assert digits.info.splits["test"].num_examples == 360
    assert digits.info.features["label"].num_classes == 10
    test = _examples(digits, "test")
    images = np.stack([example["image"] for example in test])
    assert images.shape == (360, 8, 8, 1) and images.dtype == np.uint8
    # Scaled from sklearn's 0..16 to the 0..255 range of real images.
    assert images.max() == 255 and set(np.unique(images) % 16) <= {0, 15}
    # Stratified: every digit is in the test split about equally often.
    counts = collections.Counter(int(example["label"]) for example in test)
    assert sorted(counts) == list(range(10)) and min(counts.values()) >= 34


def test_digits_split_is_deterministic_and_disjoint(digits, tmp_path):
    rebuilt = _build("zoo_digits", tmp_path)

    def fingerprints(builder, split):
        return {(example["image"].tobytes(), int(example["label"])) for example in _examples(builder, split)}

    assert fingerprints(rebuilt, "test") == fingerprints(digits, "test")
    # Exact duplicates exist among the 1,797 digits, so allow a handful in common.
    assert len(fingerprints(digits, "train") & fingerprints(digits, "test")) < 5


def _texts_and_labels(builder, split):
    examples = _examples(builder, split)
    return [example["text"].decode() for example in examples], np.array([example["label"] for example in examples])


def test_sentiment_features_and_splits(sentiment):
    assert sentiment.info.features["label"].names == ["negative", "positive"]
    texts, labels = _texts_and_labels(sentiment, "train")
    assert len(texts) == 4000 and len(_examples(sentiment, "test")) == 1000
    assert 0.45 < labels.mean() < 0.55
    assert len(set(texts)) > 3500
    words = {word for text in texts for word in re.findall(r"[a-z]+", text.lower())}
    assert {"i", "love", "this", "movie", "not", "but"} <= words


def test_sentiment_is_deterministic(sentiment, tmp_path):
    rebuilt = _build("zoo_sentiment", tmp_path)
    assert sorted(_texts_and_labels(rebuilt, "test")[0]) == sorted(_texts_and_labels(sentiment, "test")[0])


def test_negation_flips_labels(sentiment):
    texts, labels = _texts_and_labels(sentiment, "train")
    # One-clause reviews such as "The plot was dull." and "The plot is not dull!".
    single_clause = re.compile(r"^The \w+ (?:was|is)( not)? (\w+)[.!]*$")
    labels_seen = collections.defaultdict(set)  # (adjective, negated) -> labels
    for text, label in zip(texts, labels):
        match = single_clause.match(text)
        if match:
            labels_seen[match.group(2), bool(match.group(1))].add(int(label))
    assert all(len(seen) == 1 for seen in labels_seen.values())
    both = [adjective for adjective, negated in labels_seen if negated and (adjective, False) in labels_seen]
    assert len(both) >= 10
    assert all(labels_seen[adjective, True] != labels_seen[adjective, False] for adjective in both)


def test_contrasts_are_frequent_and_balanced(sentiment):
    texts, labels = _texts_and_labels(sentiment, "train")
    contrasted = [label for text, label in zip(texts, labels) if re.search(r" but |hough|However", text)]
    assert len(contrasted) > 1000 and 0.4 < np.mean(contrasted) < 0.6


def test_sentiment_needs_word_order(sentiment):
    """A bag-of-words linear model learns something but stays far from perfect."""
    train_texts, train_labels = _texts_and_labels(sentiment, "train")
    test_texts, test_labels = _texts_and_labels(sentiment, "test")
    vectorizer = CountVectorizer()
    classifier = LogisticRegression(max_iter=1000).fit(vectorizer.fit_transform(train_texts), train_labels)
    accuracy = classifier.score(vectorizer.transform(test_texts), test_labels)
    assert 0.6 < accuracy < 0.85


def test_builds_without_the_importlib_resources_package(tmp_path):
    """tfds 4.9.10 imports it on every build; zoo.data.offline stands in the standard library's."""
    script = (
        "import sys; sys.modules['importlib_resources'] = None  # As if not installed.\n"
        "import tensorflow_datasets as tfds, zoo.data.offline\n"
        f"tfds.builder('zoo_digits', data_dir={str(tmp_path)!r}).download_and_prepare()\n"
    )
    repository = pathlib.Path(__file__).resolve().parents[2]
    environment = dict(os.environ, PYTHONPATH=str(repository))
    result = subprocess.run(
        [sys.executable, "-c", script], env=environment, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert tfds.builder("zoo_digits", data_dir=str(tmp_path)).is_prepared()


def test_zoo_reviews_are_documents_of_three_to_six_sentences_of_one_polarity(tmp_path):
    from zoo.data.pretraining import documents_from_texts

    splits = tfds.load("zoo_reviews", data_dir=str(tmp_path), download=True)
    sizes = {split: len(list(dataset)) for split, dataset in splits.items()}
    assert sizes == {"train": 2000, "test": 200}
    texts = [example["text"].numpy() for example in splits["train"].take(300)]
    documents = documents_from_texts(texts)
    assert len(documents) == 300
    # Sentences may themselves hold ". " (two clauses), so a review splits into 3 or more.
    assert min(map(len, documents)) >= 3 and np.mean([len(document) for document in documents]) < 9
    labels = [int(example["label"]) for example in splits["train"]]
    assert 0.4 < np.mean(labels) < 0.6
