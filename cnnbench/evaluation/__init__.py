"""Test-set evaluation of a trained model: metrics (torchmetrics), shift robustness, pictures.

Modules: settings (the `evaluation` config group), predict (logits of a test pass), metrics
(torchmetrics), shift (translated test sets), raster (drawing with Pillow), plots (the two
pictures), png (PNG files), pictures (the pictures of a run, written), report (rich table),
evaluate (all of it for one run), command (`cnnbench eval`). Nothing is imported here, so that
the light modules (png, for `cnnbench compare`) do not pull in torch.
"""
