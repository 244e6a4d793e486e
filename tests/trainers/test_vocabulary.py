"""The run's vocabulary: learned once into model_dir, and said when the texts hold fewer tokens than asked."""

import tensorflow as tf

from trainers.phases import Phases
from trainers.vocabulary import run_vocabulary

TEXTS = ["a good film", "a bad film", "good acting , bad plot", "the plot is good"]


def _vocabulary(model_dir, size):
    return run_vocabulary(model_dir, texts_fn=lambda: tf.data.Dataset.from_tensor_slices(TEXTS),
                          num_texts=len(TEXTS), vocabulary_size=size, phases=Phases())


def test_a_size_beyond_what_the_texts_hold_says_how_many_tokens_were_learned(tmp_path, capsys):
    vocabulary = _vocabulary(tmp_path, 5000)
    assert len(vocabulary) < 5000
    assert f"Vocabulary: {len(vocabulary):,} tokens, all the texts hold (asked for 5,000)" in capsys.readouterr().out
    assert (tmp_path / "vocabulary.txt").is_file()


def test_a_size_the_texts_fill_prints_no_such_line(tmp_path, capsys):
    assert len(_vocabulary(tmp_path, 20)) == 20
    assert "all the texts hold" not in capsys.readouterr().out
