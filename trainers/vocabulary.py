"""A text run's WordPiece vocabulary and preprocessor, kept in `model_dir` so every mode reuses them.

Training, evaluation and export of one `model_dir` must tokenize identically: the vocabulary is
written to `model_dir/vocabulary.txt` on first use and read back from there ever after.
"""

import pathlib

from zoo.data.text import TextPreprocessor, compute_vocabulary, load_vocabulary, save_vocabulary
from zoo.errors import ConfigError


def run_vocabulary(model_dir, *, texts_fn, num_texts, vocabulary_size, phases, preset=None, init_checkpoint=None):
    """The run's vocabulary (list of str), saved as `model_dir/vocabulary.txt` on first use.

    From, in order: the file already there (a resumed run); the preset's tokenizer; the
    `--init_checkpoint` run's (its encoder's embeddings are indexed by it); else learned from
    `texts_fn()` (a dataset of `num_texts` tf.string scalars), timed as the phase "vocabulary" of
    `phases`: on SST-2 it takes longer than TensorFlow's startup, so a user is told what it does.

    Raises:
        ConfigError: the init checkpoint has no vocabulary, or `model_dir` has another one.
    """
    path = pathlib.Path(model_dir) / "vocabulary.txt"
    init_path = pathlib.Path(init_checkpoint) / "vocabulary.txt" if init_checkpoint else None
    if not path.is_file():
        if preset is not None:
            vocabulary = preset.vocabulary
        elif init_path is not None:
            if not init_path.is_file():
                raise ConfigError(f"--init_checkpoint={init_checkpoint} holds no vocabulary.txt; pass the "
                                  "--model_dir of a --task=pretrain run")
            vocabulary = load_vocabulary(init_path)
        else:
            with phases.phase("vocabulary", f"learning {vocabulary_size} WordPiece tokens from {num_texts:,} texts"):
                vocabulary = compute_vocabulary(texts_fn(), vocabulary_size)
            if len(vocabulary) < vocabulary_size:  # Every word of the texts is whole; a larger size adds nothing.
                print(f"Vocabulary: {len(vocabulary):,} tokens, all the texts hold (asked for {vocabulary_size:,})")
        save_vocabulary(vocabulary, path)
    vocabulary = load_vocabulary(path)
    if init_path is not None and init_path.is_file() and load_vocabulary(init_path) != vocabulary:
        raise ConfigError(f"--model_dir={model_dir} has another vocabulary than --init_checkpoint={init_checkpoint}; "
                          "use a new --model_dir")
    return vocabulary


def text_preprocessor(config, model_dir, *, texts_fn, num_texts, output_format, phases, preset=None,
                      init_checkpoint=None) -> TextPreprocessor:
    """The run's `TextPreprocessor` (raw strings -> token ids) over `run_vocabulary`.

    Args:
        config: the run's ExperimentConfig (data.sequence_length, vocabulary_size, lowercase).
        output_format: "token_ids" or "bert" (zoo.data.text).
        preset: a `zoo.presets.BertPreset` whose tokenizer's vocabulary and casing win, or None.
    """
    vocabulary = run_vocabulary(model_dir, texts_fn=texts_fn, num_texts=num_texts,
                                vocabulary_size=config.data.vocabulary_size, phases=phases, preset=preset,
                                init_checkpoint=init_checkpoint)
    return TextPreprocessor(
        vocabulary,
        sequence_length=config.data.sequence_length,
        output_format=output_format,
        lowercase=preset.lowercase if preset is not None else config.data.lowercase,
    )
