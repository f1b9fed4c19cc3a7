"""Every optimizer cnnbench ships builds with every scheduler it ships."""
from __future__ import annotations

import pytest
import torch

from cnnbench.engine.safe_build import build_allowed
from cnnbench.engine.schedule import build_schedule
from cnnbench.errors import UserError
from cnnbench.run.build import build_optimizer
from cnnbench.settings.config_files import config_dir

OPTIMIZERS = sorted(p.stem for p in (config_dir() / "optimizer").glob("*.yaml"))
SCHEDULERS = sorted(p.stem for p in (config_dir() / "scheduler").glob("*.yaml"))


def _schedule(cfg, model: torch.nn.Module):
    optimizer = build_optimizer(cfg, model)
    factory = (build_allowed(cfg.scheduler, "scheduler")
               if cfg.scheduler.get("_target_") else None)
    return optimizer, build_schedule(factory, optimizer, epochs=2, steps_per_epoch=3)


@pytest.mark.parametrize("scheduler", SCHEDULERS)
@pytest.mark.parametrize("optimizer", OPTIMIZERS)
def test_every_optimizer_steps_under_every_scheduler(compose, optimizer, scheduler):
    cfg = compose([f"optimizer={optimizer}", f"scheduler={scheduler}"])
    model = torch.nn.Linear(4, 2)
    opt, schedule = _schedule(cfg, model)
    for _ in range(3):
        model(torch.randn(8, 4)).sum().backward()
        opt.step()
        opt.zero_grad()
        schedule.after_batch()
    schedule.after_epoch(1.0)
    assert all(g["lr"] > 0 for g in opt.param_groups)


def test_one_cycle_asked_to_cycle_a_momentum_adadelta_lacks_is_one_paragraph(compose):
    cfg = compose(["optimizer=adadelta", "scheduler=onecycle", "+scheduler.cycle_momentum=true"])
    with pytest.raises(UserError, match="cycle_momentum=true needs an optimizer with momentum"):
        _schedule(cfg, torch.nn.Linear(4, 2))
