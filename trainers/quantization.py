"""`--quantize=int8`: Keras' post-training int8 weight quantization, evaluated and exported beside the float model.

Run after the float model's export: the model is quantized in place, so nothing trains after it.
"""

from zoo.export import saved_model_size_bytes


def export_quantized(trainer, task, inputs, export_dir, quantize, *, float_version_dir):
    """Quantizes the model's weights to `quantize` ("int8") in place, evaluates it and exports
    `<model>_<quantize>`; prints both models' sizes and accuracies.

    Args:
        trainer: the run's `trainers.trainer.Trainer` (its model and strategy).
        task: the run's classification task (its `export`). inputs: its `TaskInputs`.
        float_version_dir: the float model's SavedModel, whose size is printed beside.
    """
    float_metrics = trainer.evaluate(inputs.eval_input_fn)
    with trainer.strategy.scope():
        trainer.model.quantize(quantize)
    quantized_metrics = trainer.evaluate(inputs.eval_input_fn)
    # No TFLite here: the converter has no kernels for Keras' int8 matmuls.
    version_dir = task.export(trainer.model, inputs, f"{task.config.model_name}_{quantize}", export_dir, tflite=False,
                              metrics=quantized_metrics)
    print(
        f"float32: {saved_model_size_bytes(float_version_dir) / 1e6:.2f} MB, "
        f"accuracy {float_metrics['accuracy']:.4f}; {quantize}: "
        f"{saved_model_size_bytes(version_dir) / 1e6:.2f} MB, accuracy {quantized_metrics['accuracy']:.4f}"
    )
