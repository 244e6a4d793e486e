"""Reusable pieces shared by the models; layers import no model."""

from zoo.layers.classifier_head import ClassifierHead
from zoo.layers.dropout import Dropout
from zoo.layers.pooling import MaskedMaxPooling, MaskedMeanPooling
from zoo.layers.transformer_encoder import TransformerEncoderBlock, check_divisible

__all__ = ["ClassifierHead", "Dropout", "MaskedMaxPooling", "MaskedMeanPooling", "TransformerEncoderBlock", "check_divisible"]
