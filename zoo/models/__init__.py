"""One model family per module; importing them registers them with zoo.registry."""

from zoo.models import bert, bow, cnn, rnn, transformer  # noqa: F401

__all__ = ["bert", "bow", "cnn", "rnn", "transformer"]
