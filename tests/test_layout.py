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
    ("cnnbench.cli", "cnnbench.__main__", "cnnbench.api"),        # argv or Python -> subcommand
]
# The root's `cnnbench.train`, `cnnbench.sweep`, ... are the API's, reached by name on first use
# (a module __getattr__), so that `import cnnbench` imports nothing else.


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
            if name == prefix or (name.startswith(prefix + ".") and prefix != "cnnbench"):
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
                  c.func.attr in WRITES or (isinstance(c.func.value, ast.Name)
                  and c.func.value.id in MODULE_WRITES and c.func.attr in (
                      "save", "replace", "rename", "makedirs", "mkdir", "dump", "remove",
                      "rmtree", "mkstemp", "copy", "copyfile", "move", "unlink")))]
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


PLUGINS = PACKAGE.parent / "hydra_plugins"
MUTABLE_CALLS = {"list", "dict", "set", "defaultdict", "OrderedDict", "Counter", "deque"}
MUTABLE_DISPLAYS = (ast.List, ast.Dict, ast.Set, ast.ListComp, ast.DictComp, ast.SetComp)


def module_statements(body: list[ast.stmt]) -> list[ast.stmt]:
    """The statements a module runs at import, inside its ifs, trys and withs too (but not in
    its functions and classes)."""
    out = []
    for node in body:
        out.append(node)
        if isinstance(node, (ast.If, ast.For, ast.While, ast.With, ast.Try)):
            for block in ("body", "orelse", "finalbody"):
                out += module_statements(getattr(node, block, []))
            for handler in getattr(node, "handlers", []):
                out += module_statements(handler.body)
    return out


def is_mutable(value: ast.expr | None) -> bool:
    if isinstance(value, MUTABLE_DISPLAYS):
        return True
    if isinstance(value, ast.Call):
        name = value.func.attr if isinstance(value.func, ast.Attribute) else \
            getattr(value.func, "id", None)
        return name in MUTABLE_CALLS
    return False


def mutable_state(tree: ast.Module) -> list[str]:
    """Module-level names bound to a mutable container (a name in UPPER_CASE is a constant by
    convention, `__all__` the module's face), and every `global` statement."""
    found = [f"line {node.lineno}: global {', '.join(node.names)}" for node in ast.walk(tree)
             if isinstance(node, ast.Global)]
    for node in module_statements(tree.body):
        if isinstance(node, (ast.Assign, ast.AnnAssign)) and is_mutable(node.value):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            names = [n.id for t in targets for n in ast.walk(t) if isinstance(n, ast.Name)]
            found += [f"line {node.lineno}: {name}" for name in names
                      if not name.strip("_").isupper() and name != "__all__"]
    return found


@pytest.mark.parametrize("path", sorted([*PACKAGE.rglob("*.py"), *PLUGINS.rglob("*.py")]),
                         ids=lambda p: str(p.relative_to(PACKAGE.parent)))
def test_no_module_holds_mutable_state(path):
    found = mutable_state(ast.parse(path.read_text()))
    assert not found, f"{path.name}: module-level mutable state: " + "; ".join(found)


def test_the_mutable_state_check_finds_what_it_looks_for():
    source = ("import collections\nSEEN = []\nif True:\n    cache: dict = {}\n"
              "runs = collections.defaultdict(list)\nnames = [n for n in 'ab']\n"
              "def f():\n    global runs\n    local = []\n")
    assert [f.split(": ")[1] for f in mutable_state(ast.parse(source))] == \
        ["global runs", "cache", "runs", "names"]
