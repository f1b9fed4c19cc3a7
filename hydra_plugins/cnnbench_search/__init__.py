"""cnnbench's Hydra sweeper plugin: `hydra/sweeper=cnnbench_optuna`, a search on Optuna's own
API whose trials report every epoch and stop early when its pruner says so, and whose study can
be shared by several workers (processes or machines) through Optuna's RDB storage.

Like cnnbench_launcher, it lives in Hydra's `hydra_plugins` namespace package, where Hydra finds
sweepers; there is deliberately no hydra_plugins/__init__.py.
"""
