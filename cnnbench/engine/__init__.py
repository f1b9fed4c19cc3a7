"""Torch only, writes no file: the runtime (device, precision, seeds), the epoch loop, the
captured step and its warm-up, schedules, EMA, fine-tuning, batched augmentation, DDP, the
accuracy target.
"""
