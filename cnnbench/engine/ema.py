"""An exponential moving average of a model's weights (trainer.ema_decay), as timm's ModelEma
and torch.optim.swa_utils keep one: the weights that are validated, tested and saved.

The average covers every floating-point tensor of the model's state (weights and BatchNorm
statistics) and is updated every `every` optimizer steps in one fused lerp, with
`decay ** every` so the averaging horizon does not depend on `every`. Early updates use the
smaller decay (1 + n) / (10 + n) (n: updates so far), so the average is not dominated by the
random initial weights.
"""
from __future__ import annotations

import contextlib
from typing import Any, Iterator

import torch
from torch import nn


class WeightEMA:
    def __init__(self, model: nn.Module, decay: float, every: int = 1) -> None:
        if not 0.0 < decay < 1.0:
            raise ValueError(f"decay must be in (0, 1), got {decay}")
        if every < 1:
            raise ValueError(f"every must be at least 1, got {every}")
        self.decay, self.every = decay, every
        state = model.state_dict()  # tensors that share the live parameters' memory
        self.names = [k for k, v in state.items() if v.is_floating_point()]
        self.live = [state[k] for k in self.names]
        self.shadow = [v.detach().clone() for v in self.live]
        self.steps = 0    # optimizer steps seen
        self.updates = 0  # averaging updates made

    def after_step(self) -> None:
        """Call after every optimizer step."""
        self.steps += 1
        if self.steps % self.every:
            return
        self.updates += 1
        decay = min(self.decay, (1 + self.updates) / (10 + self.updates)) ** self.every
        with torch.no_grad():
            torch._foreach_lerp_(self.shadow, self.live, 1.0 - decay)

    def _copy(self, dst: list[torch.Tensor], src: list[torch.Tensor]) -> None:
        with torch.no_grad():
            torch._foreach_copy_(dst, src)

    @contextlib.contextmanager
    def swapped(self) -> Iterator[None]:
        """The model holds the averaged weights inside the block and its own weights after it."""
        saved = [t.clone() for t in self.live]
        self._copy(self.live, self.shadow)
        try:
            yield
        finally:
            self._copy(self.live, saved)

    def apply(self) -> None:
        """Put the averaged weights into the model for good (the end of training)."""
        self._copy(self.live, self.shadow)

    def state_dict(self) -> dict[str, Any]:
        return {"steps": self.steps, "updates": self.updates,
                "shadow": dict(zip(self.names, self.shadow))}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if list(state["shadow"]) != self.names:
            raise ValueError("the checkpoint's weight average is of a different model")
        self.steps, self.updates = state["steps"], state["updates"]
        self._copy(self.shadow, [state["shadow"][k].to(s.device) for k, s in
                                 zip(self.names, self.shadow)])


def averaged_weights(payload: dict[str, Any]) -> dict[str, torch.Tensor]:
    """A checkpoint's model weights as training evaluated them: with the weight average in place
    of the live weights when the run kept one (trainer.ema_decay)."""
    weights = dict(payload["model"])
    ema = payload.get("ema")
    if ema:
        weights.update(ema["shadow"])
    return weights
