"""zoo: readable Keras 3 reference models behind one registry.

    import zoo
    zoo.list_models()                      # ['bert', 'bert_base', ..., 'bert_tiny', 'bow', 'cnn', 'gru', 'lstm', 'transformer']
    model = zoo.build("bert", num_layers=4, hidden_dim=256, num_heads=4, intermediate_dim=1024)
"""

from zoo.errors import ConfigError
from zoo.registry import build, default_config, get_spec, list_models, register

# Importing the model modules registers their families.
from zoo import models  # noqa: E402,F401  (import for its side effect)

__all__ = ["ConfigError", "build", "default_config", "get_spec", "list_models", "register"]
