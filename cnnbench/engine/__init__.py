"""Torch only, writes no file: the runtime (device, precision, seeds), the epoch and the fit
loop, the captured step and its warm-up, schedules, EMA, fine-tuning, batched augmentation, DDP,
the accuracy target, and the finiteness guard every number leaving the engine passes.
"""
