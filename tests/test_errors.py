"""A user's mistake is one line, and a misspelt name is answered with the names it was close to."""

import pytest

import zoo
from zoo.errors import ConfigError, did_you_mean


def test_did_you_mean_suggests_close_names_only():
    assert did_you_mean("hiden_dim", ["hidden_dim", "num_heads"]) == " (did you mean hidden_dim?)"
    assert did_you_mean("trian", {"train": 1, "data": 2}) == " (did you mean train?)"  # Any iterable of names.
    assert did_you_mean("xyz", ["hidden_dim", "num_heads"]) == ""


def test_config_error_is_a_value_error_raised_by_the_registry():
    assert issubclass(ConfigError, ValueError)
    with pytest.raises(ConfigError, match=r"unknown model 'bertt' \(did you mean bert"):
        zoo.build("bertt")
