"""Pretrained BERT from keras-hub presets: a backbone's sizes and weights, and its WordPiece vocabulary.

A preset is a local directory written by `save_to_preset` (config.json, model.weights.h5,
tokenizer.json, assets/tokenizer/vocabulary.txt) or a handle keras-hub downloads, such as
`bert_tiny_en_uncased` or `kaggle://keras/bert/keras/bert_tiny_en_uncased/2` (needs a network):

    preset = load_bert_preset("bert_tiny_en_uncased")
    model = zoo.build("bert", **preset.encoder_config, num_classes=2)
    preset.load_weights_into(model.encoder)
    TextPreprocessor(preset.vocabulary, sequence_length=128, output_format="bert", lowercase=preset.lowercase)
"""

import dataclasses

import keras_hub

from zoo.errors import ConfigError
from zoo.models.bert import ENCODER_SIZE_FIELDS, BertEncoder


@dataclasses.dataclass
class BertPreset:
    """A loaded preset: `encoder_config` (the encoder's sizes), the backbone, and the tokenizer's vocabulary."""

    name: str
    backbone: keras_hub.models.BertBackbone
    vocabulary: list
    lowercase: bool

    @property
    def encoder_config(self) -> dict:
        config = self.backbone.get_config()
        return {field: config[field] for field in ENCODER_SIZE_FIELDS}  # keras-hub uses the same names.

    def load_weights_into(self, encoder: BertEncoder):
        """Copies the preset's weights into a zoo encoder of the same sizes (built or not)."""
        mismatched = {
            field: (getattr(encoder, field), value)
            for field, value in self.encoder_config.items()
            if getattr(encoder, field) != value
        }
        if mismatched:
            raise ConfigError(
                f"--preset={self.name} has other sizes than the model: "
                + ", ".join(f"{field} {ours} (model) vs {theirs} (preset)" for field, (ours, theirs) in mismatched.items())
            )
        encoder.load_keras_hub_weights(self.backbone)


def load_bert_preset(preset) -> BertPreset:
    """Loads a keras-hub BERT preset (directory or handle).

    Raises:
        ConfigError: it cannot be read (no such directory, no network for a handle, not BERT);
            one line naming the preset and the cause.
    """
    try:
        backbone = keras_hub.models.BertBackbone.from_preset(preset)
        tokenizer = keras_hub.models.BertTokenizer.from_preset(preset)
    except Exception as error:  # keras-hub raises many kinds (ValueError, OSError, HTTP errors).
        cause = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise ConfigError(
            f"--preset={preset} could not be loaded as a keras-hub BERT preset ({cause[:300]}); "
            "pass a local preset directory (written by save_to_preset) or, with a network, a "
            "handle such as bert_tiny_en_uncased"
        ) from None
    return BertPreset(name=str(preset), backbone=backbone, vocabulary=list(tokenizer.get_vocabulary()),
                      lowercase=bool(tokenizer.lowercase))
