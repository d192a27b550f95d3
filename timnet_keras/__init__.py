"""timnet-keras: the Keras 3 reference implementation of TIM-Net (ICASSP 2023)."""
__version__ = "0.1.0"
