"""--task=pretrain's options (trainers.tasks.pretraining.PretrainingConfig): typed, validated, and wired
into the inputs: no NSP, packing, whole word masking, masks drawn anew each pass, short sequences first."""

import numpy as np
import pytest

from trainers import config as config_lib
from trainers import tasks
from zoo.errors import ConfigError

WORDS = ["movie", "plot", "cast", "was", "is", "good", "bad", "dull", "great", "love", "hate", "the", "this", "i"]


def _config(tmp_path, **task):
    rng = np.random.default_rng(0)
    documents = ["\n".join(" ".join(rng.choice(WORDS, size=6)) + "." for _ in range(4)) for _ in range(40)]
    (tmp_path / "corpus.txt").write_text("\n\n".join(documents) + "\n")
    values = {"model": {"name": "bert"}, "task": {"name": "pretrain", "max_predictions": 5, **task},
              "data": {"train_files": str(tmp_path / "*.txt"), "sequence_length": 32, "vocabulary_size": 150},
              "train": {"batch_size": 8, "epochs": 2, "steps_per_epoch": 5}}
    return config_lib.config_from_dict(values)


def _inputs(tmp_path, **task):
    config = _config(tmp_path, **task)
    task = tasks.TASKS["pretrain"](config, model_dir=tmp_path)
    return task, task.prepare_inputs()


def test_the_new_fields_default_to_bert_and_are_set_from_overrides():
    config = config_lib.load_config("bert/pretrain")
    assert (config.task.nsp, config.task.packing, config.task.whole_word_masking) == (None, False, False)
    assert (config.task.objective, config.task.next_sentence_prediction) == ("mlm", True)
    assert (config.task.short_sequence_fraction, config.task.short_sequence_length) == (0.0, None)
    values = config_lib.apply_overrides(
        config.to_dict(), "task.nsp=false,task.packing=true,task.whole_word_masking=true,"
                          "task.short_sequence_fraction=0.9,task.short_sequence_length=16")
    task = config_lib.config_from_dict(values).task
    assert (task.nsp, task.packing, task.whole_word_masking, task.short_sequence_fraction, task.short_sequence_length) == (
        False, True, True, 0.9, 16)


@pytest.mark.parametrize("field, value, message", [
    ("nsp", "no", "task.nsp must be bool or null, got 'no'"),
    ("objective", "gan", "task.objective must be one of mlm, electra, got 'gan'"),
    ("packing", 1, "task.packing must be bool, got 1"),
    ("whole_word_masking", "yes", "task.whole_word_masking must be bool"),
    ("short_sequence_fraction", 1.0, r"task.short_sequence_fraction must be in \[0, 1\), got 1.0"),
    ("short_sequence_length", 4, "task.short_sequence_length must be an integer >= 8"),
    ("max_predictions", 0, r"task.max_predictions must be a positive integer \(or null: ceil\(task.mask_rate"),
    ("nsp", True, "task.objective=electra has no next sentence prediction"),
])
def test_a_bad_value_is_a_one_line_error_naming_the_field(field, value, message):
    values = {"model": {"name": "bert"}, "task": {"name": "pretrain", field: value}}
    if message.startswith("task.objective=electra"):
        values["task"]["objective"] = "electra"
    with pytest.raises(ConfigError, match=message):
        config_lib.config_from_dict(values)


def test_a_short_length_not_below_the_sequence_length_is_refused(tmp_path):
    with pytest.raises(ConfigError, match=r"task.short_sequence_length must be in \[8, data.sequence_length=32\), got 32"):
        _inputs(tmp_path, short_sequence_fraction=0.5, short_sequence_length=32)


def test_training_draws_new_masks_each_pass_and_evaluation_scores_the_same_ones(tmp_path):
    task, inputs = _inputs(tmp_path)
    # The whole train split in one batch: two batches are two passes over the same examples.
    task.config.train.batch_size = inputs.num_train_examples
    passes = iter(task.prepare_inputs().train_input_fn())
    first, second = next(passes), next(passes)

    def by_example(batch):  # {unmasked token ids: mask positions}: the passes shuffle differently.
        inputs, labels = batch
        token_ids = inputs["token_ids"].numpy().copy()
        positions, weights = inputs["mask_positions"].numpy(), labels["mask_weights"].numpy() > 0
        for row in range(len(token_ids)):
            token_ids[row, positions[row][weights[row]]] = labels["mask_ids"].numpy()[row][weights[row]]
        return {tuple(row): tuple(position[weight]) for row, position, weight in zip(token_ids, positions, weights)}

    first, second = by_example(first), by_example(second)
    assert first.keys() == second.keys()
    assert np.mean([first[example] != second[example] for example in first]) > 0.8
    evaluations = [next(iter(inputs.eval_input_fn())) for _ in range(2)]
    for key in ("token_ids", "mask_positions"):
        np.testing.assert_array_equal(evaluations[0][0][key], evaluations[1][0][key])


def test_without_nsp_examples_are_one_segment_with_no_next_sentence_label_and_packed_without_padding(tmp_path):
    task, inputs = _inputs(tmp_path, nsp=False, packing=True, whole_word_masking=True)
    assert task.objective.SUMS == ("loss_sum", "count", "mlm_loss_sum", "mlm_correct", "mlm_count")
    # 38 documents x 4 sentences x 7 tokens, a [SEP] between documents, in sequences of 30 tokens.
    assert inputs.num_train_examples == -(-(38 * 4 * 7 + 37) // 30)
    task.config.train.batch_size = inputs.num_train_examples  # One batch: the whole split.
    batch_inputs, labels = next(iter(task.prepare_inputs().train_input_fn()))
    assert set(labels) == {"mask_ids", "mask_weights"}
    assert not batch_inputs["segment_ids"].numpy().any()
    assert (batch_inputs["padding_mask"].numpy().min(axis=1) == 0).sum() == 1  # Packed: only the split's last is padded.


def test_the_first_share_of_the_steps_reads_short_sequences(tmp_path):
    _, inputs = _inputs(tmp_path, short_sequence_fraction=0.3)
    # 2 epochs of 5 steps: 3 steps of 32 // 4 = 8 tokens, then 32.
    lengths = [batch[0]["token_ids"].shape[1] for batch, _ in zip(inputs.train_input_fn(), range(6))]
    assert lengths == [8, 8, 8, 32, 32, 32]
    assert inputs.sample_model_input["token_ids"].shape == (1, 32)  # Evaluation stays at full length.


def test_by_default_each_length_has_the_prediction_slots_its_mask_rate_can_fill(tmp_path):
    """max_predictions null: ceil(0.15 * 32) = 5 slots a row at 32 tokens, ceil(0.15 * 8) = 2 in the
    short phase (an upper bound: [CLS] and two [SEP] leave 5 real tokens there, so 1 is filled);
    the fullest full-length rows fill all 5."""
    _, inputs = _inputs(tmp_path, max_predictions=None, packing=True, short_sequence_fraction=0.3)
    batches = [batch for batch, _ in zip(inputs.train_input_fn(), range(4))]
    assert [batch[0]["mask_positions"].shape[1] for batch in batches] == [2, 2, 2, 5]
    assert [batch[1]["mask_weights"].numpy().sum(axis=1).max() for batch in batches] == [1, 1, 1, 5]
    assert (config_lib.load_config("bert/pretrain_own_text").task.predictions_per_sequence(128),
            config_lib.load_config("bert/pretrain").task.predictions_per_sequence(64)) == (20, 10)
