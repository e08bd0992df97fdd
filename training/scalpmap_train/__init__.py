"""Training, export and evaluation of the scalpmap segmentation model."""
