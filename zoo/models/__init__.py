"""One model family per module; importing them registers them with zoo.registry."""

from zoo.models import bert, cnn, rnn, transformer  # noqa: F401

__all__ = ["bert", "cnn", "rnn", "transformer"]
