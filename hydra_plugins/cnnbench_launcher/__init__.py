"""cnnbench's Hydra launcher plugins: `hydra/launcher=parallel` (conf/hydra/launcher/parallel.yaml)
and the sequential launcher `cnnbench train -m` uses by default (conf/train.yaml).

They live in Hydra's `hydra_plugins` namespace package because Hydra only accepts launchers from
there (and finds them by scanning it); there is deliberately no hydra_plugins/__init__.py.
"""
