"""`cnnbench --help` fits 80 columns, its lists wrapped under their own column; and a paragraph
(an error, advice) is wrapped between words on a terminal, one line through a pipe."""
from __future__ import annotations

import io

from conftest import run_cli
from rich.console import Console

from cnnbench.boundary import say
from cnnbench.errors import UserError, print_user_error

LONG = "word " * 30 + "supercalifragilisticexpialidocious " * 3


def test_the_main_help_fits_80_columns_and_names_every_command_and_preset(tmp_path):
    proc = run_cli("--help", cwd=tmp_path, env={"COLUMNS": "80"})
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert max(len(line.rstrip()) for line in lines) <= 80, \
        [line for line in lines if len(line.rstrip()) > 80]
    for name in ("train", "models", "data", "eval", "compare", "predict", "export", "lr-find",
                 "fashion_speedrun", "vgg_cifar10", "mixup_cutmix"):
        assert name in proc.stdout, name
    wrapped = [line for line in lines if line.startswith(" " * 16) and line.strip()]
    assert wrapped, proc.stdout  # a long list goes on under its own column


def test_a_paragraph_is_wrapped_between_words_on_a_terminal_and_whole_through_a_pipe():
    for show in (lambda c: print_user_error(c, UserError(LONG)), lambda c: say(c, LONG)):
        terminal = Console(file=io.StringIO(), width=60, force_terminal=True, color_system=None)
        show(terminal)
        lines = terminal.file.getvalue().splitlines()
        assert len(lines) > 1 and all(len(line.rstrip()) <= 60 for line in lines), lines
        assert all(part in ("word", "supercalifragilisticexpialidocious", "error:")
                   for line in lines for part in line.split()), lines
        pipe = Console(file=io.StringIO(), width=60, color_system=None)
        show(pipe)
        assert len(pipe.file.getvalue().splitlines()) == 1
