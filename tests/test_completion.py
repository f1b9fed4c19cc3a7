"""Tab completion: the script `cnnbench train -sc install=bash` prints, driven as bash drives it."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from cnnbench.commands.completion import query

SUBCOMMANDS = ["train", "models", "eval", "compare"]


def complete(line: str, shell: str = "bash") -> list[str]:
    """What bash offers for `line` (cursor at its end) once the installed script is loaded."""
    bindir = Path(sys.executable).parent  # the `cnnbench` the script calls
    words = line.split() + ([""] if line.endswith(" ") else [])
    program = f"""
        eval "$(cnnbench train -sc install={shell})"
        COMP_LINE={line!r}; COMP_POINT=${{#COMP_LINE}}
        COMP_WORDS=({' '.join(repr(w) for w in words)}); COMP_CWORD={len(words) - 1}
        _cnnbench_complete
        printf '%s\\n' "${{COMPREPLY[@]}}"
    """
    env = {**os.environ, "PATH": f"{bindir}{os.pathsep}{os.environ['PATH']}"}
    proc = subprocess.run(["bash", "-c", program], capture_output=True, text=True, env=env,
                          timeout=60)
    assert proc.returncode == 0, proc.stderr
    return [w for w in proc.stdout.splitlines() if w]


@pytest.mark.parametrize("line, expected", [
    ("cnnbench tr", ["train"]),
    ("cnnbench train mod", ["model.", "model="]),
    ("cnnbench train trainer.ep", ["trainer.epochs="]),
    ("cnnbench train --c", ["--cfg"]),
    ("cnnbench eval chec", ["checkpoint="]),
])
def test_bash_completes_commands_groups_keys_and_flags(line, expected):
    assert complete(line) == expected


def test_bash_completes_a_group_with_its_options():
    offered = complete("cnnbench train dataset=mnist model=")
    assert {"model=mlp", "model=lenet", "model=vgg"} <= set(offered)
    assert all(o.startswith("model=") for o in offered)
    assert complete("cnnbench train optimizer=ad") == ["optimizer=adadelta", "optimizer=adam",
                                                       "optimizer=adamw"]


def test_the_zsh_script_loads_bash_completion_first():
    proc = subprocess.run([sys.executable, "-m", "cnnbench", "train", "-sc", "install=zsh"],
                          capture_output=True, text=True, check=True)
    assert "bashcompinit" in proc.stdout and "_cnnbench_complete" in proc.stdout
    if shutil.which("zsh"):  # where zsh is installed, the script really loads in it
        run = subprocess.run(["zsh", "-c", proc.stdout + "\ncomplete -p cnnbench"],
                             capture_output=True, text=True)
        assert run.returncode == 0, run.stderr


def test_query_answers_without_importing_torch():
    code = ("import os, sys; os.environ['COMP_LINE'] = 'cnnbench train model='; "
            "from cnnbench.cli import main; main(['train', '-sc', 'query=bash']); "
            "assert 'torch' not in sys.modules, 'torch was imported'")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert "model=lenet" in proc.stdout.split()


def test_a_bad_completion_request_is_one_paragraph(cli, tmp_path):
    proc = cli("train", "-sc", "install=fish", cwd=tmp_path)
    assert proc.returncode == 2 and "install=bash" in proc.stdout and "Traceback" not in proc.stderr


def test_query_after_other_commands():
    assert query("cnnbench models ", SUBCOMMANDS) == ["dataset=", "json=true", "--help"]
    assert query("cnnbench predict checkpoint=run t", SUBCOMMANDS) == ["topk=", "trainer.device="]
    assert query("cnnbench export format=", SUBCOMMANDS) == ["format=onnx", "format=torchscript"]
    assert query("cnnbench ", SUBCOMMANDS) == sorted(SUBCOMMANDS)


def test_every_subcommand_takes_key_value_options(cli, tmp_path):
    """One option style: out=DIR and json=true everywhere (the --out/--json spellings too)."""
    from cnnbench.commands.compare.command import parse_args
    from cnnbench.settings.options import normalized

    assert normalized(["--out", "d", "--json", "x=1"], flags=("json",), valued=("out",)) == [
        "out=d", "json=true", "x=1"]
    parsed = parse_args(["sweep/0_model=mlp", "out=cmp", "runs=true"])
    assert (parsed.paths, parsed.out, parsed.runs) == (["sweep/0_model=mlp"], "cmp", True)
    assert parse_args(["a", "--out", "cmp"]).out == "cmp"
    proc = cli("models", "dataset=synthetic", "json=true", cwd=tmp_path, check=True)
    assert proc.stdout.lstrip().startswith("[")


def test_a_sweep_asked_for_its_config_is_one_paragraph(cli, tmp_path):
    proc = cli("train", "-m", "model=mlp,lenet", "--cfg", "job", cwd=tmp_path)
    text = proc.stdout + proc.stderr
    assert proc.returncode == 2 and "Traceback" not in text and len(text.strip().splitlines()) == 1
    assert "drop -m" in text and not (tmp_path / "outputs").exists()
