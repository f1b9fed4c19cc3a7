"""One training job, from a composed config to its run directory: build, lifecycle, checkpoint
schema, restore, resume, sinks (history, TensorBoard, hparams, console), energy, provenance.
"""
