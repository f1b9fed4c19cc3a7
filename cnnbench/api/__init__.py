"""cnnbench from Python and notebooks: the runs of `cnnbench train`, `train -m` and `compare`,
in this process (torch is imported once), with the results as objects."""
from cnnbench.api.calls import sweep, train
from cnnbench.api.comparison import Comparison, compare
from cnnbench.api.errors import CnnbenchError, RunInterrupted
from cnnbench.api.pictures import Picture
from cnnbench.api.predictions import Predictions
from cnnbench.api.run import Checkpoints, Run

__all__ = ["Checkpoints", "CnnbenchError", "Comparison", "Picture", "Predictions", "Run",
           "RunInterrupted", "compare", "sweep", "train"]
