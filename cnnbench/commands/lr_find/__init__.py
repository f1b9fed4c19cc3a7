"""`cnnbench lr-find`: the learning-rate range test of a training run's setup."""
