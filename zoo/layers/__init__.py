"""Reusable pieces shared by the models; layers import no model."""

from zoo.layers.transformer_encoder import TransformerEncoderBlock, check_divisible

__all__ = ["TransformerEncoderBlock", "check_divisible"]
