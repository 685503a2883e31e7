"""Shell completion: ``kubectl modelrelease completion bash|zsh``, and kubectl's own
plugin completion (kubectl 1.26+ runs ``kubectl_complete-modelrelease`` on PATH)."""

from __future__ import annotations

import sys
from collections.abc import Sequence

COMMANDS = (
    "status",
    "list",
    "history",
    "promote",
    "undo",
    "abort",
    "retry",
    "approve",
    "pause",
    "resume",
    "lint",
    "completion",
)
TAKES_RELEASE = frozenset(COMMANDS) - {"list", "lint", "completion"}
GLOBAL_FLAGS = ("-n", "--namespace", "--context", "--kubeconfig", "-h", "--help")
FLAGS = {
    "status": ("--watch", "-w", "-o", "--output"),
    "list": ("-A", "--all-namespaces"),
    "promote": ("--full",),
    "undo": ("--to-revision",),
    "completion": (),
}
FLAG_VALUES = {"-o": ("json", "yaml"), "--output": ("json", "yaml")}
SHELLS = ("bash", "zsh")

_BASH = """# kubectl modelrelease: bash completion (source <(kubectl modelrelease completion bash))
_kubectl_modelrelease() {
    local words
    words=("${COMP_WORDS[@]:1:COMP_CWORD}")
    COMPREPLY=($(kubectl_complete-modelrelease "${words[@]}" 2>/dev/null | grep -v '^:'))
}
complete -o default -F _kubectl_modelrelease kubectl-modelrelease
"""

_ZSH = """#compdef kubectl-modelrelease
# kubectl modelrelease: zsh completion (source <(kubectl modelrelease completion zsh))
_kubectl_modelrelease() {
    local -a candidates
    local found
    found="$(kubectl_complete-modelrelease ${words[2,CURRENT]} 2>/dev/null | grep -v '^:')"
    candidates=(${(f)found})
    compadd -a candidates
}
compdef _kubectl_modelrelease kubectl-modelrelease
"""


def script(shell: str) -> str:
    """The completion script of ``shell`` for the ``kubectl-modelrelease`` command.

    ``kubectl modelrelease <TAB>`` itself is completed by kubectl, which asks the
    ``kubectl_complete-modelrelease`` program installed with the package.
    """
    return _BASH if shell == "bash" else _ZSH


def candidates(words: Sequence[str], release_names: Sequence[str] = ()) -> list[str]:
    """Completions of the last word, given the words typed after ``modelrelease``."""
    *before, current = list(words) or [""]
    if before and before[-1] in FLAG_VALUES:
        return [v for v in FLAG_VALUES[before[-1]] if v.startswith(current)]
    positional = [w for i, w in enumerate(before) if not _is_flag_or_value(before, i)]
    if current.startswith("-"):
        command = positional[0] if positional else ""
        flags = (*GLOBAL_FLAGS, *FLAGS.get(command, ()))
        return [f for f in flags if f.startswith(current)]
    if not positional:
        return [c for c in COMMANDS if c.startswith(current)]
    command = positional[0]
    if command == "completion" and len(positional) == 1:
        return [s for s in SHELLS if s.startswith(current)]
    if command in TAKES_RELEASE and len(positional) == 1:
        return [n for n in release_names if n.startswith(current)]
    return []


_TAKES_VALUE = frozenset(
    {"-n", "--namespace", "--context", "--kubeconfig", "-o", "--output", "--to-revision"}
)


def _is_flag_or_value(words: Sequence[str], index: int) -> bool:
    word = words[index]
    if word.startswith("-"):
        return True
    return index > 0 and words[index - 1] in _TAKES_VALUE


def complete_main() -> int:
    """``kubectl_complete-modelrelease WORDS...``: one candidate per line, cobra-style."""
    words = sys.argv[1:]
    names: list[str] = []
    if _wants_release(words):
        names = _release_names(words)
    for candidate in candidates(words, names):
        print(candidate)
    print(":4")  # cobra's ShellCompDirectiveNoFileComp: no file names after these
    return 0


def _wants_release(words: Sequence[str]) -> bool:
    *before, current = list(words) or [""]
    positional = [w for i, w in enumerate(before) if not _is_flag_or_value(before, i)]
    return len(positional) == 1 and positional[0] in TAKES_RELEASE and not current.startswith("-")


def _release_names(words: Sequence[str]) -> list[str]:
    """Release names from the cluster, best effort (completion never fails loudly)."""
    from modelrelease.cli.cluster import Cluster, Target

    def value(*flags: str) -> str | None:
        for i, word in enumerate(words[:-1]):
            if word in flags:
                return words[i + 1]
        return None

    try:
        cluster = Cluster(
            Target(value("--kubeconfig"), value("--context"), value("-n", "--namespace"))
        )
        return [r["metadata"]["name"] for r in cluster.releases(all_namespaces=False)]
    except Exception:  # no names is the right completion when anything fails
        return []


if __name__ == "__main__":
    sys.exit(complete_main())
