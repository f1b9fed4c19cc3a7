"""How a search's job learns which trial of the study it is: the override the search adds to
the job's command line (`+search.trial=N`), which the job's run directory keeps among its
overrides. A resume replays it as the run's own; outside the search's process (no study named
in the environment) the run reports to no study."""
from __future__ import annotations

import re

TRIAL_OVERRIDE = "+search.trial"
_TRIAL_ENTRY = re.compile(re.escape(TRIAL_OVERRIDE) + r"=\d{1,9}")


def is_trial_override(entry: str) -> bool:
    """Whether `entry` is the trial number a search gave its job, as the search writes it."""
    return bool(_TRIAL_ENTRY.fullmatch(entry))
