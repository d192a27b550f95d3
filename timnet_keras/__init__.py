"""timnet-keras: the Keras 3 reference implementation of TIM-Net (ICASSP 2023).

The three objects (KerasHub's split):
    MfccPreprocessor  audio -> (frames, 39) MFCCs, exactly as the authors
    TimnetBackbone    MFCCs -> the fused representation
    TimnetClassifier  backbone + head + preprocessor + labels: audio -> emotions

They load lazily, so `timnet_keras.features.extract` runs without importing Keras.
"""
__version__ = "0.2.0"

_EXPORTS = {
    "MfccPreprocessor": "features.preprocessor",
    "TimnetBackbone": "model.backbone",
    "TimnetClassifier": "model.classifier",
    "RunConfig": "runs.run_config",
    "ModelConfig": "runs.run_config",
    "TrainingConfig": "runs.run_config",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name):
    if name in _EXPORTS:
        import importlib

        return getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
