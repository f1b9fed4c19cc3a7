"""The README a new user reads: every command it shows runs as written, it stays short, and
every page (README.md and docs/*.md) names only files, folders and links that exist."""
from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import run_cli

REPO = Path(__file__).resolve().parents[1]
README = REPO / "README.md"
PAGES = [README, *sorted((REPO / "docs").glob("*.md"))]
BIN = Path(sys.executable).parent
SET_UP = [
    'python3 -m venv .venv && .venv/bin/pip install -e ".[test]" && .venv/bin/cnnbench train',
    ".venv/bin/python -m pytest",
]

# Each README command runs exactly as written, with these size limits appended to a
# `cnnbench train` so that it takes seconds on a CPU: one epoch, and a small synthetic dataset
# unless the command names its own. A resume keeps the run's own settings, so it gets none.
TRAIN_LIMITS = ["trainer.epochs=1"]
SMALL_DATA = ["dataset=synthetic", "dataset.train_size=256", "dataset.test_size=128"]

# What a placeholder of the README stands for in the folder where its commands run.
RUN, SWEEP, PHOTOS = "readme_run", "readme_sweep", "photos"
PLACEHOLDERS = {"<run>": RUN, "<sweep>": SWEEP}

# Words about how the project is made, and places outside the repository: never on a page.
FORBIDDEN_EVERYWHERE = [r"\.gpu\b", r"\.\./shared", r"\bshared/", r"\bseeds/", r"beyond the seeds",
                        r"\bmissed\b", r"\bissue \d", r"\bthe issue\b"]
FORBIDDEN_IN_README = [r"\bissues?\b", r"\bsessions?\b", r"\bsource[- ]\d{3}\b", r"\b00\d\b",
                       r"\btickets?\b"]


def code_blocks(text: str, language: str) -> list[list[str]]:
    """The lines of each fenced block of `language`, in the order of the page."""
    return [block.split("\n") for block in
            re.findall(rf"^```{language}\n(.*?)\n```$", text, flags=re.S | re.M)]


def without_comment(line: str) -> str:
    """The line without a shell comment (a # after a space, outside quotes)."""
    quote = ""
    for i, char in enumerate(line):
        if quote:
            quote = "" if char == quote else quote
        elif char in "'\"":
            quote = char
        elif char == "#" and (i == 0 or line[i - 1].isspace()):
            return line[:i].rstrip()
    return line.rstrip()


def readme_commands() -> list[str]:
    """Every command of the README's sh blocks but the set-up block, as written."""
    commands: list[str] = []
    for block in code_blocks(README.read_text(), "sh")[1:]:
        pending = ""
        for raw in block:
            line = without_comment(raw).strip()
            if line.endswith("\\"):
                pending += line[:-1] + " "
                continue
            line = (pending + line).strip()
            pending = ""
            if line and not line.startswith("source "):
                commands.append(line)
    return commands


def runnable(command: str) -> str:
    """The command with its placeholders filled in and, for training, the size limits."""
    for placeholder, value in PLACEHOLDERS.items():
        command = command.replace(placeholder, value)
    words = command.split()
    if "cnnbench" in words and "train" in words and "-sc" not in words and "trainer.resume=" not in command:
        extra = TRAIN_LIMITS + ([] if any(w.startswith("dataset=") for w in words) else SMALL_DATA)
        command = " ".join([command, *extra])
    return command


@pytest.fixture(scope="module")
def workdir(tmp_path_factory) -> Path:
    """A folder holding what the README's placeholders name: a tiny trained run, a tiny sweep
    of two seeds, and a folder of pictures, one subfolder per class."""
    from PIL import Image

    cwd = tmp_path_factory.mktemp("readme")
    run_cli("train", f"hydra.run.dir=outputs/runs/{RUN}", *TRAIN_LIMITS, *SMALL_DATA,
            cwd=cwd, check=True)
    run_cli("train", "-m", "model=mlp", "trainer.seed=1,2", f"hydra.sweep.dir=outputs/multirun/{SWEEP}",
            *TRAIN_LIMITS, *SMALL_DATA, cwd=cwd, check=True)
    for label, color in (("cat", (200, 40, 40)), ("dog", (30, 60, 220))):
        (cwd / PHOTOS / label).mkdir(parents=True)
        for i in range(12):
            size = (40 + 2 * i, 36)
            Image.new("RGB", size, tuple(c + 2 * i for c in color)).save(cwd / PHOTOS / label / f"{i}.png")
    Image.new("L", (28, 28), 200).save(cwd / PHOTOS / "cat" / "gray.jpg")
    return cwd


def shell_env(cwd: Path) -> dict[str, str]:
    """The environment a user has after `source .venv/bin/activate`, with a private cache."""
    return {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
            "CNNBENCH_CACHE_DIR": str(cwd / "cache"), "PYTHONUNBUFFERED": "1", "COLUMNS": "100"}


def serve_tensorboard(command: str, cwd: Path) -> str:
    """Start TensorBoard as the README does, wait until it serves, stop it; its output."""
    script = BIN / "tensorboard"
    program = [str(script)] if script.exists() else [sys.executable, "-m", "tensorboard.main"]
    log = cwd / "tensorboard.log"
    with open(log, "w") as out:
        proc = subprocess.Popen([*program, *command.split()[1:], "--port", "0"], cwd=cwd,
                                env=shell_env(cwd), stdout=out, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 120
        while "http://" not in log.read_text() and proc.poll() is None:
            assert time.monotonic() < deadline, "TensorBoard never said where it serves"
            time.sleep(0.5)
        served = proc.poll() is None
        proc.terminate()
        proc.wait(timeout=30)
    assert served, f"TensorBoard ended before serving:\n{log.read_text()}"
    return log.read_text()


def run_in_bash(command: str, cwd: Path) -> str:
    """Run the README's command in bash, as `runnable` makes it; its output, once it exits 0."""
    script = runnable(command)
    if "install=bash" in command:  # eval "$(...)" succeeds even when the inner command fails
        script += "\ncomplete -p cnnbench"
    proc = subprocess.run(["bash", "-c", script], cwd=cwd, env=shell_env(cwd),
                          capture_output=True, text=True, timeout=600)
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, f"{script}\nexit {proc.returncode}\n{output}"
    return output


@pytest.mark.parametrize("command", readme_commands())
def test_every_readme_command_runs_as_written(command: str, workdir: Path) -> None:
    if command.startswith("tensorboard "):
        output = serve_tensorboard(command, workdir)
    else:
        output = run_in_bash(command, workdir)
    assert "Traceback" not in output, output


@pytest.mark.parametrize("block", ["\n".join(b) for b in code_blocks(README.read_text(), "python")])
def test_every_readme_python_example_runs_as_written(block: str, workdir: Path) -> None:
    """Runs as written, on the data it names: it is kept small enough for that (1 epoch)."""
    proc = subprocess.run([str(BIN / "python"), "-c", block], cwd=workdir, env=shell_env(workdir),
                          capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, block + "\n" + proc.stdout + proc.stderr
    assert "Traceback" not in proc.stdout + proc.stderr


def test_a_cpu_run_says_the_threads_it_uses_as_the_readme_says(workdir: Path) -> None:
    command = next(c for c in readme_commands() if c.startswith("OMP_NUM_THREADS=2 "))
    head = "\n".join(run_in_bash(command, workdir).splitlines()[:5])
    assert re.search(r"\b2 (CPU )?threads\b", head), head


def test_the_readme_shows_the_commands_a_new_user_needs() -> None:
    shown = " ".join(readme_commands())
    for command in ("cnnbench train", "cnnbench compare", "cnnbench eval", "cnnbench predict",
                    "cnnbench export", "tensorboard --logdir outputs", "OMP_NUM_THREADS="):
        assert command in shown, command


def test_the_readme_is_at_most_250_lines() -> None:
    assert len(README.read_text().splitlines()) <= 250


def prose_paragraphs(text: str) -> list[str]:
    """The page's paragraphs of prose (a list item is one): no code blocks, no tables."""
    text = re.sub(r"^```.*?^```$", "", text, flags=re.S | re.M)
    return [p for p in re.split(r"\n\s*\n|\n(?=[-*] )", text)
            if p.strip() and not p.lstrip().startswith("|")]


def test_no_readme_paragraph_is_over_500_characters() -> None:
    long = [p[:80] for p in prose_paragraphs(README.read_text()) if len(" ".join(p.split())) > 500]
    assert not long, long


def test_the_set_up_block_is_the_first_sh_block_with_its_two_lines() -> None:
    assert code_blocks(README.read_text(), "sh")[0] == SET_UP


def test_the_cpu_recipe_sits_directly_above_the_set_up_block() -> None:
    text = README.read_text()
    above = text[:text.index("```sh\n")].rstrip().splitlines()
    assert above[-1] == "```", "the last text above the set-up block is not the CPU recipe"
    opening = max(i for i, line in enumerate(above[:-1]) if line.startswith("```"))
    assert above[opening] != "```sh", "the CPU recipe is an sh block: .ci/run would run it"
    assert above[opening + 1:-1] == [
        "python3 -m venv .venv",
        ".venv/bin/pip install torch torchvision --index-url https://download.pytorch.org/whl/cpu",
    ]


def anchors(page: Path) -> set[str]:
    """The anchors GitHub gives the page's headings."""
    headings = re.findall(r"^#+ (.+)$", re.sub(r"^```.*?^```$", "", page.read_text(), flags=re.S | re.M),
                          flags=re.M)
    return {re.sub(r"[^\w\- ]", "", h.lower()).replace(" ", "-") for h in headings}


def named_paths(page: Path) -> list[tuple[str, str]]:
    """Every relative link of the page and every repository path it writes in backticks."""
    text = page.read_text()
    found = [(link, f"{page}{link}" if link.startswith("#") else f"{page.parent / link}")
             for link in re.findall(r"\]\(([^)\s]+)\)", text) if not re.match(r"[a-z]+:", link)]
    # folders the tool writes (a run's outputs, the data it reads) are not the repository's files
    tops = {p.name for p in REPO.iterdir()} - {"outputs", "multirun", "data", ".venv"}
    for word in re.findall(r"`([^`\s]+)`", text):
        path = word.split("::")[0].rstrip(":,")
        if "/" in path and path.split("/")[0] in tops and not re.search(r"[<>*{}$~=,\[\]]", path):
            found.append((word, str(REPO / path)))
    return found


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_every_file_and_link_a_page_names_exists(page: Path) -> None:
    missing = []
    for name, target in named_paths(page):
        path, _, anchor = target.partition("#")
        if not Path(path).exists() or (anchor and anchor not in anchors(Path(path))):
            missing.append(name)
    assert not missing, missing


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_no_page_speaks_of_what_is_not_in_the_repository(page: Path) -> None:
    text = page.read_text()
    patterns = FORBIDDEN_EVERYWHERE + (FORBIDDEN_IN_README if page == README else [])
    found = [m.group(0) for p in patterns for m in re.finditer(p, text, flags=re.I)]
    assert not found, found
