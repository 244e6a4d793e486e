"""A user's own labeled text, from TSV or CSV files, as `(raw_input, label)` pairs through tf.data.

The layout is GLUE's: a header row, then one example a row.

    sentence<TAB>label            text,label                 sentence1<TAB>sentence2<TAB>label
    a gripping film<TAB>1         "loud, and dull",negative  A man sleeps.<TAB>He rests.<TAB>entailment

- the text column is named `sentence`, `text` or `sentence1`; an optional second text column
  (`sentence2` or `text_pair`) makes each example a pair, for BERT;
- the `label` column holds integers 0 .. N-1, or strings, mapped to ids by the label list;
- `.tsv` files have no quoting (GLUE's: a quote character is text); `.csv` files quote as
  RFC 4180 does (Python's `csv` and `tf.data.experimental.CsvDataset` agree on it);
- other columns (GLUE's `idx`, ...) are ignored.

The files are checked once in Python, so a bad one fails in one line that names the file, line and
column (`FileFormatError`), before any training; then tf.data's `CsvDataset` reads them, streaming:

    files = open_labeled_files("train.tsv", "dev.tsv", "run/labels.txt")
    files.info.num_classes                  # 2
    files.load("train")                     # (b"a gripping film", 1), ...
"""

import csv
import dataclasses
import functools
import os

import tensorflow as tf

from zoo.data.datasets import DatasetInfo
from zoo.data.pipeline import map_in_batches
from zoo.errors import ConfigError

TEXT_COLUMNS = ("sentence", "text", "sentence1")
PAIR_COLUMNS = ("sentence2", "text_pair")
LABEL_COLUMN = "label"
SPLITS = ("train", "eval")


class FileFormatError(ConfigError):
    """A data file that cannot be read as labeled text; the message names the file, line and column."""


@dataclasses.dataclass(frozen=True)
class ScannedFiles:
    """What one check of a file set found.

    Attributes:
        paths: tuple of str. The files, in reading order (a glob's matches, sorted).
        delimiter: str. `"\\t"` for .tsv, `","` for .csv.
        columns: tuple of int. The 0-based indices of the text, (pair,) and label columns.
        labels: tuple of str. Each example's label, as written.
    """

    paths: tuple
    delimiter: str
    columns: tuple
    labels: tuple

    @property
    def is_pair(self) -> bool:
        return len(self.columns) == 3

    def fingerprint(self) -> list:
        """Each file's path, size and modification time: changes when a file is replaced or edited."""
        return [(path, tf.io.gfile.stat(path).length, tf.io.gfile.stat(path).mtime_nsec) for path in self.paths]


def _delimiter(path):
    extension = os.path.splitext(path)[1].lower()
    if extension not in (".tsv", ".csv"):
        raise FileFormatError(f"{path}: expected a .tsv or .csv file, got {extension or 'no extension'!r}")
    return "\t" if extension == ".tsv" else ","


def _reader(file, delimiter):
    if delimiter == "\t":
        return csv.reader(file, delimiter="\t", quoting=csv.QUOTE_NONE, strict=True)
    return csv.reader(file, delimiter=",", strict=True)


def _header_columns(path, header):
    """Indices of the text, (pair,) and label columns in `header`."""

    def find(names, required):
        found = [index for index, name in enumerate(header) if name.strip() in names]
        if len(found) > 1 or (required and not found):
            what = "no" if not found else "more than one"
            raise FileFormatError(
                f"{path} line 1: {what} column named {' or '.join(names)} in the header {header}"
            )
        return found

    return tuple(find(TEXT_COLUMNS, True) + find(PAIR_COLUMNS, False) + find((LABEL_COLUMN,), True))


def scan_files(pattern) -> ScannedFiles:
    """Checks every file matching `pattern` (a path or glob) and collects its labels.

    Raises:
        FileFormatError: no file matches; a header lacks a text or `label` column, or differs
            between files; a row has another number of fields than the header; a label is empty;
            a quote is malformed (.csv).
    """
    paths = tuple(sorted(tf.io.gfile.glob(pattern)))
    if not paths:
        raise FileFormatError(f"{pattern}: no such file")
    delimiters = {_delimiter(path) for path in paths}
    if len(delimiters) > 1:
        raise FileFormatError(f"{pattern}: mixes .tsv and .csv files")
    delimiter = delimiters.pop()
    first_header, columns, labels = None, None, []
    for path in paths:
        with tf.io.gfile.GFile(path, "r") as file:
            reader = _reader(file, delimiter)
            try:
                header = next(reader, None)
                if header is None:
                    raise FileFormatError(f"{path}: empty file, expected a header row")
                if first_header is None:
                    first_header, columns = header, _header_columns(path, header)
                elif header != first_header:
                    raise FileFormatError(f"{path} line 1: header {header} differs from {paths[0]}'s {first_header}")
                label_column = columns[-1]
                for row in reader:
                    if len(row) != len(header):
                        raise FileFormatError(
                            f"{path} line {reader.line_num}: {len(row)} fields, but the header has "
                            f"{len(header)} ({delimiter!r}-separated: {', '.join(header)})"
                        )
                    if not row[label_column].strip():
                        raise FileFormatError(
                            f"{path} line {reader.line_num}, column {label_column + 1} ({LABEL_COLUMN}): empty label"
                        )
                    labels.append(row[label_column].strip())
            except csv.Error as error:
                raise FileFormatError(f"{path} line {reader.line_num}: {error}") from None
            except UnicodeDecodeError as error:
                raise FileFormatError(f"{path}: not UTF-8 text ({error.reason} at byte {error.start})") from None
    return ScannedFiles(paths=paths, delimiter=delimiter, columns=columns, labels=tuple(labels))


def label_names(train_labels) -> list[str]:
    """The label list: "0" .. str(max) when every label is an integer (ids as written), else the
    distinct strings, sorted (ids are their positions)."""
    distinct = set(train_labels)
    if all(label.lstrip("-").isdigit() for label in distinct):
        values = sorted(int(label) for label in distinct)
        if values[0] < 0:
            raise FileFormatError(f"integer labels must be 0 .. N-1, got {values[0]}")
        return [str(value) for value in range(values[-1] + 1)]
    return sorted(distinct)


def _is_integer_list(names):
    return all(name.isdigit() for name in names)


def _check_labels(scanned, names):
    """Names the first label of `scanned` that is not in the label list `names`."""
    is_integer, known = _is_integer_list(names), set(names)
    for index, label in enumerate(scanned.labels):
        # Integer labels are read as numbers, so "01" is class 1.
        key = str(int(label)) if is_integer and label.lstrip("-").isdigit() else label
        if key not in known:
            path, line = _locate(scanned, index)
            shown = ", ".join(names[:10]) + (", ..." if len(names) > 10 else "")
            raise FileFormatError(
                f"{path} line {line}, column {scanned.columns[-1] + 1} ({LABEL_COLUMN}): "
                f"{label!r} is not a label of the training data ({shown})"
            )


def _locate(scanned, example_index):
    """The file and line of the `example_index`-th example (read again: only errors need it)."""
    for path in scanned.paths:
        with tf.io.gfile.GFile(path, "r") as file:
            reader = _reader(file, scanned.delimiter)
            next(reader)
            for _ in reader:
                if example_index == 0:
                    return path, reader.line_num
                example_index -= 1
    raise IndexError(example_index)


@dataclasses.dataclass(frozen=True)
class LabeledFiles:
    """A train and an eval file set sharing one label list.

    Attributes:
        train: ScannedFiles.
        eval: ScannedFiles.
        info: DatasetInfo. Classes from the label list; `num_examples` by split ("train", "eval").
    """

    train: ScannedFiles
    eval: ScannedFiles
    info: DatasetInfo

    @property
    def is_pair(self) -> bool:
        return self.train.is_pair

    def load(self, split) -> tf.data.Dataset:
        """One split as `(raw_input, label)`: raw_input a tf.string scalar, or a pair of them
        `(text, text_pair)`; label int64, the id in the label list. In file order."""
        scanned = getattr(self, split)
        names = list(self.info.class_names)
        if _is_integer_list(names):
            to_id = functools.partial(tf.strings.to_number, out_type=tf.int64)
        else:  # Every label was checked to be in the list.
            to_id = tf.lookup.StaticHashTable(
                tf.lookup.KeyValueTensorInitializer(names, tf.range(len(names), dtype=tf.int64)), default_value=-1
            ).lookup
        dataset = tf.data.experimental.CsvDataset(
            list(scanned.paths),
            record_defaults=[tf.constant("", tf.string)] * len(scanned.columns),
            header=True,
            field_delim=scanned.delimiter,
            use_quote_delim=scanned.delimiter == ",",
            select_cols=sorted(scanned.columns),
        )
        # CsvDataset yields the selected columns in file order; put them back in (text, pair, label) order.
        order = [sorted(scanned.columns).index(column) for column in scanned.columns]

        def to_examples(*fields):  # Each field [batch].
            fields = [fields[index] for index in order]
            raw_input = tuple(fields[:-1]) if len(fields) == 3 else fields[0]
            return raw_input, to_id(tf.strings.strip(fields[-1]))

        return map_in_batches(dataset, to_examples)


def open_labeled_files(train_pattern, eval_pattern, label_list_path) -> LabeledFiles:
    """Checks both file sets and fixes the label list, saved at `label_list_path` on first use.

    A saved label list is kept (a resumed run or an export maps labels as training did); a train
    label outside it is an error, as is an eval label outside it.

    Raises:
        ConfigError: no eval files; FileFormatError: see `scan_files`, or unknown labels.
    """
    if not eval_pattern:
        raise ConfigError("--train_files needs --eval_files (a labeled file set to evaluate on)")
    train, evaluation = scan_files(train_pattern), scan_files(eval_pattern)
    if not train.labels:
        raise FileFormatError(f"{train_pattern}: no examples after the header")
    if train.is_pair != evaluation.is_pair:
        raise FileFormatError(f"{eval_pattern}: text pairs must be in both or neither of the train and eval files")
    if tf.io.gfile.exists(label_list_path):
        with tf.io.gfile.GFile(label_list_path, "r") as file:
            names = file.read().splitlines()
    else:
        names = label_names(train.labels)
        with tf.io.gfile.GFile(label_list_path, "w") as file:
            file.write("".join(f"{name}\n" for name in names))
    _check_labels(train, names)
    _check_labels(evaluation, names)
    info = DatasetInfo(
        num_classes=len(names),
        class_names=tuple(names),
        num_examples={"train": len(train.labels), "eval": len(evaluation.labels)},
        image_shape=None,
    )
    return LabeledFiles(train=train, eval=evaluation, info=info)
