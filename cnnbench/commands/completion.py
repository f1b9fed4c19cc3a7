"""Tab completion for bash and zsh: `eval "$(cnnbench train -sc install=bash)"`.

Hydra's own completion script assumes the program is one word (`cnnbench`), so for
`cnnbench train <TAB>` it asked `cnnbench -sc query=bash` and offered the words of the error.
Here the script passes the whole line to `cnnbench train -sc query=bash`, which answers with the
subcommands, or, after `train`, what Hydra's completion finds for the config (groups, their
options, config keys) plus the command's flags. Nothing heavy is imported: an answer takes a
fraction of a second.
"""
from __future__ import annotations

import shlex

SHELLS = ("bash", "zsh")
TRAIN_FLAGS = ["-m", "--multirun", "--cfg", "--help", "--hydra-help", "--info", "--debug",
               "--resolve", "--package"]
OTHER_OPTIONS = {
    "eval": ["checkpoint=", "out=", "evaluation.", "dataset.root=", "trainer.device=", "--help"],
    "compare": ["out=", "runs=true", "--help"],
    "models": ["dataset=", "json=true", "--help"],
    "data": ["dataset=", "dataset.", "trainer.val_split=", "trainer.seed=", "samples=", "out=",
             "json=true", "--help"],
    "predict": ["checkpoint=", "inputs=", "topk=", "out=", "trainer.device=", "batch_size=",
                "--help"],
    "export": ["checkpoint=", "format=onnx", "format=torchscript", "out=", "--help"],
    "lr-find": ["start_lr=", "end_lr=", "num_steps=", "out=", "--help"],  # and train's overrides
}

BASH = r"""_cnnbench_complete()
{
    local line="${COMP_LINE:0:$COMP_POINT}"
    local word="${COMP_WORDS[COMP_CWORD]}"
    local choices
    choices=$(COMP_LINE="$line" command cnnbench train -sc query=bash 2>/dev/null)
    COMPREPLY=($(compgen -W "$choices" -- "$word"))
    if [ ${#COMPREPLY[@]} -eq 1 ] && [[ "${COMPREPLY[0]}" == *[=./] ]]; then
        compopt -o nospace 2>/dev/null  # model= and trainer. go on with the value or the key
    fi
}
COMP_WORDBREAKS=${COMP_WORDBREAKS//=}
complete -o default -F _cnnbench_complete cnnbench
"""
ZSH_PREAMBLE = "autoload -U +X compinit && compinit\nautoload -U +X bashcompinit && bashcompinit\n"
UNINSTALL = "complete -r cnnbench 2>/dev/null; unset -f _cnnbench_complete\n"


def script(action: str, shell: str) -> str:
    """The shell code `eval` runs: `action` is install or uninstall."""
    if action == "uninstall":
        return UNINSTALL
    return (ZSH_PREAMBLE if shell == "zsh" else "") + BASH


def handle(args: list[str], subcommands: list[str]) -> str | None:
    """`-sc install=bash`, `-sc uninstall=zsh`, `-sc query=bash`: the text to print; None when
    `args` is not a completion request."""
    if not args or args[0] not in ("-sc", "--shell-completion"):
        return None
    from cnnbench.errors import UserError

    request = args[1] if len(args) > 1 else ""
    action, _, shell = request.partition("=")
    if action not in ("install", "uninstall", "query") or shell not in SHELLS:
        raise UserError(f"'{' '.join(args)}' is not a completion request. Use "
                        f"eval \"$(cnnbench train -sc install=bash)\" (or install=zsh); "
                        f"uninstall=bash removes it.")
    if action == "query":
        import os

        return " ".join(query(os.environ.get("COMP_LINE", ""), subcommands))
    return script(action, shell)


def query(line: str, subcommands: list[str]) -> list[str]:
    """The candidates for the last word of `line` (`cnnbench <command> ...`)."""
    try:
        words = shlex.split(line)
    except ValueError:  # an open quote
        words = line.split()
    if line.endswith(" "):
        words.append("")
    if len(words) <= 2:  # cnnbench <command>
        return sorted(subcommands)
    command, done, word = words[1], words[2:-1], words[-1]
    if command == "lr-find" and not word.startswith("-"):
        own = [o for o in OTHER_OPTIONS[command] if o.startswith(word)]
        return own + train_candidates(done, word)
    if command != "train":
        return [o for o in OTHER_OPTIONS.get(command, []) if o.startswith(word)]
    if word.startswith("-"):
        return [f for f in TRAIN_FLAGS if f.startswith(word)]
    return train_candidates(done, word)


def train_candidates(done: list[str], word: str) -> list[str]:
    """Hydra's completion of `word` for the train config, given the overrides before it."""
    from hydra._internal.config_loader_impl import ConfigLoaderImpl
    from hydra._internal.utils import create_config_search_path
    from hydra.plugins.completion_plugin import DefaultCompletionPlugin

    from cnnbench.settings.config_files import hydra_config_path

    overrides = [w for w in done if "=" in w and not w.startswith("-")]
    loader = ConfigLoaderImpl(config_search_path=create_config_search_path(hydra_config_path()))
    line = " ".join([*overrides, word])
    try:
        return DefaultCompletionPlugin(loader)._query(config_name="train", line=line)
    except Exception:  # noqa: BLE001 (a half-typed line Hydra cannot parse: no candidates)
        return []
