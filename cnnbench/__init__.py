"""cnnbench: config-driven training and benchmarking of image classifiers."""
__version__ = "0.1.0"
