"""cnnbench's Hydra launcher plugin: `hydra/launcher=parallel` (conf/hydra/launcher/parallel.yaml).

It lives in Hydra's `hydra_plugins` namespace package because Hydra only accepts launchers from
there (and finds them by scanning it); there is deliberately no hydra_plugins/__init__.py.
"""
