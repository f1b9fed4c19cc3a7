"""`cnnbench compare`: tables and plots across runs, from the files the runs left behind."""
from .runs import RunRecord, find_run_dirs, load_runs

__all__ = ["RunRecord", "find_run_dirs", "load_runs"]
