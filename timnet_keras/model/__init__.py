"""The network: TIM-Net's layers and backbone, the classifier task, the authors' weight format, export."""
