"""`cnnbench compare`: tables and plots across runs, from the files the runs left behind."""
from cnnbench.commands.compare.runs import RunRecord, load_runs

__all__ = ["RunRecord", "load_runs"]
