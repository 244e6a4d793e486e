"""The user's mistakes: `ConfigError`, one line that says the fix, and the names it suggests.

Every layer raises it (registry, data, trainers, search space), and the command lines print it
as one line with exit code 2, so it lives here, below all of them.
"""

import difflib


class ConfigError(ValueError):
    """A user's mistake in a model name or config field; its message is one line that says the fix."""


def did_you_mean(word, candidates) -> str:
    """The part of a message that suggests up to 3 of `candidates` close to a misspelt `word`.

        did_you_mean("hiden_dim", ["hidden_dim", "num_heads"])  # " (did you mean hidden_dim?)"

    Returns "" when none is close (difflib's ratio below 0.6), so it can always be appended.
    """
    matches = difflib.get_close_matches(word, list(candidates), n=3, cutoff=0.6)
    return f" (did you mean {', '.join(matches)}?)" if matches else ""
