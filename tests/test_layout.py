"""The package's layout is its architecture: a folder is a tier of the flow, and imports only
point down the tiers (or stay inside one folder). These tests read the source, so the rules
cannot rot."""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "cnnbench"

# Lowest tier first. A module may import its own folder and anything in a lower tier.
TIERS: list[tuple[str, ...]] = [
    ("cnnbench", "cnnbench.errors"),                              # the version, UserError
    ("cnnbench.rundir", "cnnbench.endings", "cnnbench.faults",     # contracts every tier keeps
     "cnnbench.boundary", "cnnbench.terminal"),
    ("cnnbench.settings",),                                       # argv and conf/ -> values
    ("cnnbench.data", "cnnbench.models"),                         # datasets, architectures
    ("cnnbench.engine",),                                         # torch: the training step
    ("cnnbench.evaluation",),                                     # test-set metrics, pictures
    ("cnnbench.run",),                                            # one training job
    ("cnnbench.sweep",),                                          # a sweep directory
    ("cnnbench.commands",),                                       # one folder per subcommand
    ("cnnbench.cli", "cnnbench.__main__"),                        # argv -> subcommand
]


# Tiers whose modules may use one another across folders: the root, the contracts, the entry.
SHARED_TIERS = (0, 1, len(TIERS) - 1)
# A subcommand that shows what another one shows: a sweep ends with compare's table.
SUBCOMMAND_USES = {("train", "compare")}


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules() -> dict[str, ast.Module]:
    return {module_name(p): ast.parse(p.read_text()) for p in sorted(PACKAGE.rglob("*.py"))}


def home(name: str) -> tuple[int, str]:
    """(tier, folder) of a module: the longest prefix in TIERS that names it."""
    best: tuple[int, str] | None = None
    for tier, prefixes in enumerate(TIERS):
        for prefix in prefixes:
            if name == prefix or name.startswith(prefix + ".") and prefix != "cnnbench":
                if best is None or len(prefix) > len(best[1]):
                    best = (tier, prefix)
    assert best is not None, f"{name} is in no tier of the layout: add its folder to TIERS"
    return best


def imported(tree: ast.Module) -> list[tuple[int, str]]:
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            assert node.level == 0, "imports inside cnnbench are absolute"
            out.append((node.lineno, node.module))
        elif isinstance(node, ast.Import):
            out += [(node.lineno, alias.name) for alias in node.names]
    return out


def subcommand(name: str) -> str | None:
    parts = name.split(".")
    return parts[2] if len(parts) > 2 and parts[1] == "commands" else None


def test_every_import_points_down_the_tiers_or_stays_in_its_folder():
    wrong = []
    for name, tree in modules().items():
        tier, folder = home(name)
        for line, target in imported(tree):
            if target != "cnnbench" and not target.startswith("cnnbench."):
                continue
            their_tier, their_folder = home(target)
            if their_tier > tier or (their_tier == tier and their_folder != folder
                                     and tier not in SHARED_TIERS):
                wrong.append(f"{name}:{line} imports {target}")
    assert not wrong, "upward or sideways imports:\n" + "\n".join(wrong)


def test_no_subcommand_imports_another_subcommand():
    wrong = [f"{name}:{line} imports {target}" for name, tree in modules().items()
             for line, target in imported(tree)
             if subcommand(name) and subcommand(target) and subcommand(target) != subcommand(name)
             and (subcommand(name), subcommand(target)) not in SUBCOMMAND_USES]
    assert not wrong, "\n".join(wrong)


def test_settings_never_import_torch():
    wrong = [f"{name}:{line} imports {target}" for name, tree in modules().items()
             if name.startswith("cnnbench.settings") for line, target in imported(tree)
             if target.split(".")[0] in ("torch", "torchvision", "timm")]
    assert not wrong, "\n".join(wrong)


WRITES = {"write_text", "write_bytes", "mkdir", "touch", "unlink", "rename"}  # on any object
MODULE_WRITES = {"os", "shutil", "torch", "json", "tempfile", "pickle", "np", "numpy"}


@pytest.mark.parametrize("name", [n for n in modules() if n.startswith("cnnbench.engine")])
def test_the_engine_writes_no_file(name):
    tree = modules()[name]
    calls = [node for node in ast.walk(tree) if isinstance(node, ast.Call)]
    writes = [f"line {c.lineno}: {ast.unparse(c.func)}" for c in calls
              if isinstance(c.func, ast.Attribute) and (
                  c.func.attr in WRITES or isinstance(c.func.value, ast.Name)
                  and c.func.value.id in MODULE_WRITES and c.func.attr in (
                      "save", "replace", "rename", "makedirs", "mkdir", "dump", "remove",
                      "rmtree", "mkstemp", "copy", "copyfile", "move", "unlink"))]
    opens = [f"line {c.lineno}: open(...)" for c in calls
             if isinstance(c.func, ast.Name) and c.func.id == "open"]
    assert not writes + opens, f"{name} writes files: " + ", ".join(writes + opens)


MAX_FILE_LINES = 300
MAX_FUNCTION_LINES = 60


def test_every_file_of_the_package_has_at_most_300_lines():
    long = [f"{path.relative_to(PACKAGE.parent)}: {lines} lines"
            for path in sorted(PACKAGE.rglob("*.py"))
            if (lines := len(path.read_text().splitlines())) > MAX_FILE_LINES]
    assert not long, (f"files over {MAX_FILE_LINES} lines (split them into modules with one job "
                      f"each):\n" + "\n".join(long))


def test_every_function_of_the_package_has_at_most_60_lines():
    long = [f"{name}:{node.lineno} {node.name}: {node.end_lineno - node.lineno + 1} lines"
            for name, tree in modules().items() for node in ast.walk(tree)
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
            and node.end_lineno - node.lineno + 1 > MAX_FUNCTION_LINES]
    assert not long, f"functions over {MAX_FUNCTION_LINES} lines:\n" + "\n".join(long)
