"""The project's own tfds datasets: built from installed packages alone, so a run needs no network.

Defining a `tfds.core.GeneratorBasedBuilder` subclass registers it under its snake_case name, so
importing this module is enough for `tfds.load("zoo_digits", data_dir=...)`, and
`download_and_prepare` builds it in a few seconds without downloading anything.

    zoo_digits     image uint8 [8, 8, 1], label 0..9            train 1,437 / test 360
    zoo_sentiment  text (an English review sentence), label      train 4,000 / test 1,000
                   0 = negative, 1 = positive
    zoo_reviews    text (a review of 3-6 sentences), label         train 2,000 / test 200
                   the offline corpus for BERT pretraining (documents for next-sentence pairs)
"""

import importlib.resources
import random
import sys

try:
    import importlib_resources  # noqa: F401  (only checks that it is installed)
except ModuleNotFoundError:
    # tfds 4.9.10 imports `importlib_resources` on every build but requires it only for
    # Python < 3.9; the standard library module has everything it uses.
    sys.modules["importlib_resources"] = importlib.resources

import numpy as np
import sklearn.datasets
import sklearn.model_selection
import tensorflow_datasets as tfds

_SPLIT_SEED = 0


class ZooDigits(tfds.core.GeneratorBasedBuilder):
    """scikit-learn's bundled 8x8 handwritten digits (1,797 images) as an MNIST-like dataset.

    Features:
        image: uint8 [8, 8, 1]. scikit-learn stores each pixel as a 0..16 count of set bits in a
            4x4 block; it is scaled by 16 (and 256 clipped to 255) to the usual 0..255 range.
        label: int64 scalar, the digit 0..9.

    Splits are stratified 80/20 with a fixed seed: train 1,437 and test 360 images.
    """

    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES = {"1.0.0": "Initial release."}

    def _info(self):
        return tfds.core.DatasetInfo(
            builder=self,
            description=(
                "scikit-learn's 8x8 handwritten digits (UCI optdigits) as uint8 images "
                "[8, 8, 1] in 0..255, stratified 80/20 train/test split."
            ),
            features=tfds.features.FeaturesDict(
                {
                    "image": tfds.features.Image(shape=(8, 8, 1)),
                    "label": tfds.features.ClassLabel(num_classes=10),
                }
            ),
            supervised_keys=("image", "label"),
        )

    def _split_generators(self, dl_manager):
        digits = sklearn.datasets.load_digits()
        images = np.clip(digits.images * 16, 0, 255).astype(np.uint8)[..., np.newaxis]
        train_images, test_images, train_labels, test_labels = sklearn.model_selection.train_test_split(
            images, digits.target, test_size=0.2, random_state=_SPLIT_SEED, stratify=digits.target
        )
        return {
            "train": self._generate_examples(train_images, train_labels),
            "test": self._generate_examples(test_images, test_labels),
        }

    def _generate_examples(self, images, labels):
        for index, (image, label) in enumerate(zip(images, labels)):
            yield index, {"image": image, "label": int(label)}


# The words zoo_sentiment's reviews are made of. Every clause carries one polarity; negation
# ("was not good") flips it, so no single word decides the label.
_COUNTABLE_NOUNS = ["movie", "film", "plot", "story", "script", "ending", "soundtrack", "sequel", "cast"]
_NOUNS = _COUNTABLE_NOUNS + ["acting", "dialogue", "direction", "pacing", "humor", "cinematography"]
_POSITIVE_ADJECTIVES = [
    "good", "great", "wonderful", "brilliant", "superb", "delightful", "moving", "charming",
    "gripping", "clever", "beautiful", "excellent", "fantastic", "enjoyable", "memorable", "funny",
]
_NEGATIVE_ADJECTIVES = [
    "bad", "awful", "terrible", "boring", "dull", "weak", "clumsy", "predictable",
    "tedious", "forgettable", "messy", "bland", "painful", "lifeless", "poor", "disappointing",
]
_INTENSIFIERS = ["very", "really", "truly", "incredibly", "quite", "absolutely", "rather"]
_POSITIVE_VERBS = ["love", "loved", "enjoyed", "adored", "liked", "really liked", "admired"]
_NEGATIVE_VERBS = ["hated", "disliked", "could not stand", "regret watching", "loathed"]
# Infinitives for "I did not ___ this movie": the negated verb carries the opposite polarity.
_POSITIVE_INFINITIVES = ["love", "enjoy", "like", "care for"]
_NEGATIVE_INFINITIVES = ["hate", "dislike", "mind"]
_POSITIVE_VERDICTS = [
    "I would recommend it", "it is worth every minute", "a must see", "I want to see it again",
]
_NEGATIVE_VERDICTS = [
    "I would not recommend it", "it is a waste of time", "skip it", "I want my money back",
]
# `main` decides the label; `other` says the opposite.
_CONTRAST_TEMPLATES = [
    "{other}, but {main}",
    "{other} but {main}",
    "{main}, even though {other}",
    "although {other}, {main}",
    "{other}. However, {main}",
]
_OPENERS = ["Honestly,", "Overall,", "In the end,", "To be fair,", "Well,", "Frankly,"]
_ENDINGS = [".", ".", "!", "...", "!!"]


def _with_article(phrase):
    return ("an " if phrase[0] in "aeiou" else "a ") + phrase


def _capitalized(text):
    return text[0].upper() + text[1:]


def _adjective_clause(rng, positive):
    """`the plot was very dull`, `it was not a good film`: an adjective, negated 30% of the time."""
    negated = rng.random() < 0.3
    adjective = rng.choice(_POSITIVE_ADJECTIVES if positive != negated else _NEGATIVE_ADJECTIVES)
    if rng.random() < 0.4:
        adjective = f"{rng.choice(_INTENSIFIERS)} {adjective}"
    if negated:
        verb = rng.choice(["was not", "is not", "was never"])
    else:
        verb = rng.choice(["was", "is", "felt", "seemed"])
    if rng.random() < 0.6:
        return f"the {rng.choice(_NOUNS)} {verb} {adjective}"
    subject = rng.choice(["it", "this"])
    verb = {"felt": "felt like", "seemed": "seemed like"}.get(verb, verb)
    return f"{subject} {verb} {_with_article(adjective)} {rng.choice(_COUNTABLE_NOUNS)}"


def _verb_clause(rng, positive):
    """`I love this movie`, `I did not hate the ending`: the reviewer's feeling, sometimes negated."""
    noun = f"{rng.choice(['this', 'the'])} {rng.choice(_NOUNS)}"
    if rng.random() < 0.25:
        infinitive = rng.choice(_NEGATIVE_INFINITIVES if positive else _POSITIVE_INFINITIVES)
        return f"I did not {infinitive} {noun}"
    return f"I {rng.choice(_POSITIVE_VERBS if positive else _NEGATIVE_VERBS)} {noun}"


def _clause(rng, positive, subordinate=False):
    """One clause that a reader takes as positive or negative, as asked.

    A `subordinate` clause (after "although", "even though") is always a full statement; main
    clauses may also be exclamations ("what a dull plot") or verdicts ("skip it").
    """
    kind = rng.random() * (0.8 if subordinate else 1.0)
    if kind < 0.5:
        return _adjective_clause(rng, positive)
    if kind < 0.8:
        return _verb_clause(rng, positive)
    if kind < 0.9:
        adjectives = _POSITIVE_ADJECTIVES if positive else _NEGATIVE_ADJECTIVES
        return f"what {_with_article(rng.choice(adjectives))} {rng.choice(_COUNTABLE_NOUNS)}"
    return rng.choice(_POSITIVE_VERDICTS if positive else _NEGATIVE_VERDICTS)


def _review(rng, positive=None):
    """A review sentence and its label (1 positive, 0 negative; random unless `positive` is given).

    40% are one clause, 25% two clauses that agree, 35% a contrast whose label is that of the
    main clause: `<other>, but <main>`, `<main>, even though <other>`, `although <other>, <main>`.
    The contrasts contain the same words whichever side wins, so a bag-of-words model cannot
    reach 100%; a model that reads word order can.
    """
    if positive is None:
        positive = rng.random() < 0.5
    shape = rng.random()
    if shape < 0.4:
        text = _clause(rng, positive)
    elif shape < 0.65:
        first, second = _clause(rng, positive), _clause(rng, positive)
        text = rng.choice(
            [f"{first} and {second}", f"{first}, and {second}", f"{first}. {_capitalized(second)}"]
        )
    else:
        main = _clause(rng, positive)
        other = _clause(rng, not positive, subordinate=True)
        text = rng.choice(_CONTRAST_TEMPLATES).format(main=main, other=other)
    if rng.random() < 0.2:
        text = f"{rng.choice(_OPENERS)} {text}"
    return _capitalized(text) + rng.choice(_ENDINGS), int(positive)


def _sentiment_text_info(builder, description):
    """The features of the generated text datasets: `text` (tf.string) and a negative/positive `label`."""
    return tfds.core.DatasetInfo(
        builder=builder,
        description=description,
        features=tfds.features.FeaturesDict(
            {
                "text": tfds.features.Text(),
                "label": tfds.features.ClassLabel(names=["negative", "positive"]),
            }
        ),
        supervised_keys=("text", "label"),
    )


class ZooSentiment(tfds.core.GeneratorBasedBuilder):
    """Movie-review-like English sentences generated from a fixed seed, for binary sentiment.

    Features:
        text: tf.string scalar, e.g. "Although the plot was dull, I loved the cast!".
        label: int64 scalar, 0 = negative, 1 = positive (balanced on average).

    Train has 4,000 sentences, test 1,000, drawn from different seeds. About 120 distinct words;
    negation and contrast ("..., but ...") make the label depend on word order.
    """

    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES = {"1.0.0": "Initial release."}
    _NUM_EXAMPLES = {"train": 4000, "test": 1000}

    def _info(self):
        return _sentiment_text_info(
            self,
            "Synthetic movie-review sentences with negation and contrast, generated "
            "deterministically for offline binary sentiment classification.",
        )

    def _split_generators(self, dl_manager):
        return {
            split: self._generate_examples(seed, self._NUM_EXAMPLES[split])
            for seed, split in enumerate(["train", "test"])
        }

    def _generate_examples(self, seed, num_examples):
        rng = random.Random(seed)
        for index in range(num_examples):
            text, label = _review(rng)
            yield index, {"text": text, "label": label}


class ZooReviews(tfds.core.GeneratorBasedBuilder):
    """Whole reviews of 3 to 6 sentences, generated like `zoo_sentiment`'s: a corpus of documents.

    The offline default corpus for BERT pretraining. Every sentence of a review shares its
    polarity (its label), so whether sentence B follows sentence A is partly predictable, as
    in real text, and masked words are predictable from their sentence.

    Features:
        text: tf.string scalar, the review, sentences separated by spaces.
        label: int64 scalar, 0 = negative, 1 = positive.
    """

    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES = {"1.0.0": "Initial release."}
    _NUM_EXAMPLES = {"train": 2000, "test": 200}

    def _info(self):
        return _sentiment_text_info(
            self, "Synthetic multi-sentence movie reviews, generated deterministically (offline corpus)."
        )

    def _split_generators(self, dl_manager):
        return {
            split: self._generate_examples(seed, self._NUM_EXAMPLES[split])
            for seed, split in [(10, "train"), (11, "test")]
        }

    def _generate_examples(self, seed, num_examples):
        rng = random.Random(seed)
        for index in range(num_examples):
            positive = rng.random() < 0.5
            sentences = [_review(rng, positive)[0] for _ in range(rng.randint(3, 6))]
            yield index, {"text": " ".join(sentences), "label": int(positive)}
