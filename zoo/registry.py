"""One registry for every model family: name -> model class, default config, input kind.

timm's two calls are the whole public surface: `build("bert", num_layers=4)` and
`list_models("*")`. A family registers itself where it is defined, so adding a model touches one
file plus its test. Its defaults are written once, in its constructor's signature: a registered
name states only what differs from them (`lstm` is the recurrent family with `cell_type="lstm"`).
"""

import dataclasses
import fnmatch
import inspect

import keras

from zoo.errors import ConfigError, did_you_mean

# What a model consumes; the data pipeline and the SavedModel signature are chosen from it.
#   "image":     float32 [batch, height, width, channels], raw pixel values 0..255.
#   "token_ids": int32 [batch, sequence_length], 0 is padding.
#   "bert":      {"token_ids", "segment_ids", "padding_mask"}, each int32 [batch, sequence_length].
INPUT_KINDS = ("image", "token_ids", "bert")


@dataclasses.dataclass(frozen=True)
class ModelSpec:
    name: str
    model_class: type
    input_kind: str
    default_config: dict


_MODELS: dict[str, ModelSpec] = {}


def config_fields(model_class) -> dict:
    """The config fields of `model_class`, each with its default, in its constructor's order.

    Read off the signature of `model_class.__init__`; a field without a default maps to
    `inspect.Parameter.empty`. A task model that hands its `**kwargs` on to a backbone names the
    backbone's class as `backbone_cls` (keras-hub's convention): the backbone's fields come
    first, then the task model's own. Other `**kwargs` (Keras' `name`, `dtype`) are not fields.
    """
    fields = {}
    for parameter in list(inspect.signature(model_class.__init__).parameters.values())[1:]:  # [0] is `self`.
        if parameter.kind in (parameter.POSITIONAL_OR_KEYWORD, parameter.KEYWORD_ONLY):
            fields[parameter.name] = parameter.default
        elif parameter.kind is parameter.VAR_KEYWORD and hasattr(model_class, "backbone_cls"):
            fields = {**config_fields(model_class.backbone_cls), **fields}
    return fields


def register(name, *, input_kind, **overrides):
    """Class decorator: registers `name` -> the decorated `keras.Model`.

    The default config is the constructor's defaults updated by `overrides`, which name only what
    differs. Stack it to register one class under several names (gru and lstm share a class):

        @register("gru", input_kind="token_ids")
        @register("lstm", input_kind="token_ids", cell_type="lstm")
        class RecurrentClassifier(keras.Model):
            def __init__(self, vocabulary_size=2000, num_classes=2, cell_type="gru", ...): ...

    Raises:
        ValueError: an unknown `input_kind`, a name registered twice, an override that is not a
            constructor argument, or a constructor argument with no default and no override.
    """
    if input_kind not in INPUT_KINDS:
        raise ValueError(f"input_kind must be one of {INPUT_KINDS}, got {input_kind!r}")

    def decorator(model_class):
        if name in _MODELS:
            raise ValueError(f"model {name!r} is already registered")
        fields = config_fields(model_class)
        unknown = sorted(set(overrides) - set(fields))
        if unknown:
            raise ValueError(f"model {name!r}: {model_class.__name__} takes no {', '.join(unknown)}")
        default_config = {**fields, **overrides}
        missing = [field for field, default in default_config.items() if default is inspect.Parameter.empty]
        if missing:
            raise ValueError(f"model {name!r}: give {', '.join(missing)} a default in {model_class.__name__} "
                             "or in register()")
        _MODELS[name] = ModelSpec(name, model_class, input_kind, default_config)
        return model_class

    return decorator


def get_spec(name) -> ModelSpec:
    """The registered entry for `name`; an unknown name is a ConfigError listing the known ones."""
    if name not in _MODELS:
        raise ConfigError(
            f"unknown model {name!r}{did_you_mean(name, list(_MODELS))}; "
            f"known models: {', '.join(list_models())}"
        )
    return _MODELS[name]


def list_models(pattern="*"):
    """Sorted names of the registered models that match the shell-style `pattern`."""
    return sorted(name for name in _MODELS if fnmatch.fnmatchcase(name, pattern))


def default_config(name) -> dict:
    """A copy of the constructor arguments `build(name)` uses when given no overrides."""
    return dict(get_spec(name).default_config)


def _type_name(default) -> str:
    """What a field whose default is `default` accepts, as a user reads it: "int", "list of int"."""
    if isinstance(default, (list, tuple)):
        return f"list of {_type_name(default[0])}" if default else "list"
    return "float" if isinstance(default, float) else type(default).__name__


def _matches_type(value, default) -> bool:
    """Whether `value` (as read from YAML or a flag) has the type of the field's `default`.

    A None default (an optional field, such as a size computed when unset) takes any value; bool
    is never an int here (YAML's `true` for `num_layers` is a mistake); an int is a float; a list
    or tuple matches a sequence default when every item matches its first item.
    """
    if default is None:
        return True
    if isinstance(default, bool) or isinstance(value, bool):
        return isinstance(value, bool) and isinstance(default, bool)
    if isinstance(default, (list, tuple)):
        return isinstance(value, (list, tuple)) and all(not default or _matches_type(item, default[0]) for item in value)
    if isinstance(default, float):
        return isinstance(value, (int, float))
    return isinstance(value, type(default))


def _out_of_range(value, default):
    """What a field whose default is `default` accepts, where `value` lies outside it; else None.

    Every model's int fields count or size something (layers, heads, widths, classes, the
    vocabulary, filters), so they are positive; its float fields are fractions (dropout rates, the
    CNN's translation), in [0, 1). Caught here, `model.hidden_dim=0` is a usage error naming the
    field instead of a Keras traceback from deep inside the model's construction.
    """
    if isinstance(default, (list, tuple)):
        if not default:  # No item to say what the items accept.
            return None
        for item in value:
            accepted = _out_of_range(item, default[0])
            if accepted:
                return f"a list, each item {accepted}"
        return None
    if isinstance(default, bool):
        return None
    if isinstance(default, int):
        return None if value > 0 else "a positive integer"
    if isinstance(default, float):
        return None if 0 <= value < 1 else "in [0, 1)"
    return None


def check_overrides(name, overrides):
    """Raises a one-line ConfigError for an override that is not a field of model `name`, whose
    value's type is not its default's (`num_layers: two`), or whose value is out of the field's
    range (`hidden_dim: 0`, `dropout: 1.5`), before anything is built or trained."""
    spec = get_spec(name)
    for field, value in overrides.items():
        if field not in spec.default_config:
            raise ConfigError(
                f"model {name!r} has no config field {field!r}"
                f"{did_you_mean(field, list(spec.default_config))}; "
                f"fields: {', '.join(sorted(spec.default_config))}"
            )
        default = spec.default_config[field]
        if not _matches_type(value, default):
            raise ConfigError(f"model.{field} must be {_type_name(default)} (model {name!r}), got {value!r}")
        accepted = _out_of_range(value, default)
        if accepted:
            raise ConfigError(f"model.{field} must be {accepted} (model {name!r}), got {value!r}")


def build(name, **overrides) -> keras.Model:
    """Builds the model registered as `name`, its default config updated by `overrides`.

    An override that is not one of the family's config fields, or of another type than the
    field's default, is a ConfigError naming the field.
    """
    spec = get_spec(name)
    check_overrides(name, overrides)
    return spec.model_class(**{**spec.default_config, **overrides})
