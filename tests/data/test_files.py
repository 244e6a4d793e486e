"""A user's labeled TSV/CSV files: GLUE's layout read through tf.data, one-line errors for bad files."""

import pytest

from zoo.data import files


def write(path, text):
    path.write_text(text, encoding="utf-8")
    return str(path)


def examples(labeled, split):
    return [
        (tuple(part.decode() for part in raw) if isinstance(raw, tuple) else raw.decode(), int(label))
        for raw, label in labeled.load(split).as_numpy_iterator()
    ]


def test_glue_tsv_with_integer_labels(tmp_path):
    # GLUE's TSVs have no quoting: quotes are text; extra columns (idx) are ignored.
    train = write(tmp_path / "train.tsv", 'sentence\tlabel\tidx\na "gripping" film \t1\t0\ndull\t0\t1\nfine\t1\t2\n')
    dev = write(tmp_path / "dev.tsv", "sentence\tlabel\tidx\nsuperb\t01\t0\n")
    labeled = files.open_labeled_files(train, dev, tmp_path / "labels.txt")
    assert labeled.info.num_classes == 2 and labeled.info.class_names == ("0", "1")
    assert labeled.info.num_examples == {"train": 3, "eval": 1}
    assert examples(labeled, "train") == [('a "gripping" film ', 1), ("dull", 0), ("fine", 1)]
    assert examples(labeled, "eval") == [("superb", 1)]
    assert (tmp_path / "labels.txt").read_text() == "0\n1\n"


def test_csv_with_string_labels_quotes_and_pairs(tmp_path):
    train = write(
        tmp_path / "train.csv",
        'text,text_pair,label\n"loud, and ""dull""\nfilm",it bores,neutral\nA man sleeps.,He rests.,entailment\n',
    )
    dev = write(tmp_path / "dev.csv", "text,text_pair,label\nx,y,neutral\n")
    labeled = files.open_labeled_files(train, dev, tmp_path / "labels.txt")
    assert labeled.is_pair and labeled.info.class_names == ("entailment", "neutral")
    assert examples(labeled, "train") == [(('loud, and "dull"\nfilm', "it bores"), 1), (("A man sleeps.", "He rests."), 0)]


def test_a_saved_label_list_is_kept(tmp_path):
    labels = tmp_path / "labels.txt"
    labels.write_text("neg\npos\n")
    dev = write(tmp_path / "dev.tsv", "text\tlabel\nok\tpos\n")
    train = write(tmp_path / "train.tsv", "text\tlabel\nok\tpos\nbad\tneg\nhm\tmixed\n")
    with pytest.raises(files.FileFormatError, match=r"train\.tsv line 4, column 2 \(label\): 'mixed' is not a label"):
        files.open_labeled_files(train, dev, labels)


@pytest.mark.parametrize(
    "name, content, message",
    [
        ("train.tsv", "review\tlabel\nok\t1\n", r"train\.tsv line 1: no column named sentence or text or sentence1"),
        ("train.tsv", "sentence\tscore\nok\t1\n", r"train\.tsv line 1: no column named label"),
        ("train.tsv", "sentence\tlabel\nok\t1\nnot\tok\t0\n", r"train\.tsv line 3: 3 fields, but the header has 2"),
        ("train.tsv", "sentence\tlabel\nok\t1\nhm\t \n", r"train\.tsv line 3, column 2 \(label\): empty label"),
        ("train.csv", 'text,label\n"open quote,1\n', r"train\.csv line \d+: unexpected end of data"),
        ("train.txt", "sentence\tlabel\n", r"train\.txt: expected a \.tsv or \.csv file"),
        ("train.tsv", "", r"train\.tsv: empty file"),
    ],
)
def test_bad_train_files_fail_in_one_line_naming_file_line_and_column(tmp_path, name, content, message):
    dev = write(tmp_path / "dev.tsv", "sentence\tlabel\nok\t1\n")
    with pytest.raises(files.FileFormatError, match=message) as error:
        files.open_labeled_files(write(tmp_path / name, content), dev, tmp_path / "labels.txt")
    assert "\n" not in str(error.value)


def test_eval_labels_must_be_training_labels(tmp_path):
    train = write(tmp_path / "train.tsv", "sentence\tlabel\nok\t1\nbad\t0\n")
    dev = write(tmp_path / "dev.tsv", "sentence\tlabel\nok\t1\nmeh\t2\n")
    with pytest.raises(files.FileFormatError, match=r"dev\.tsv line 3, column 2 \(label\): '2' is not a label"):
        files.open_labeled_files(train, dev, tmp_path / "labels.txt")


def test_missing_files(tmp_path):
    train = write(tmp_path / "train.tsv", "sentence\tlabel\nok\t1\n")
    with pytest.raises(files.FileFormatError, match="nothing.tsv: no such file"):
        files.open_labeled_files(train, str(tmp_path / "nothing.tsv"), tmp_path / "labels.txt")
    with pytest.raises(files.ConfigError, match="needs --eval_files"):
        files.open_labeled_files(train, None, tmp_path / "labels.txt")


def test_a_glob_reads_every_matching_file(tmp_path):
    for part in range(2):
        write(tmp_path / f"train-{part}.tsv", f"sentence\tlabel\nfirst {part}\t0\nsecond {part}\t1\n")
    dev = write(tmp_path / "dev.tsv", "sentence\tlabel\nok\t1\n")
    labeled = files.open_labeled_files(str(tmp_path / "train-*.tsv"), dev, tmp_path / "labels.txt")
    assert [text for text, _ in examples(labeled, "train")] == ["first 0", "second 0", "first 1", "second 1"]
