"""The Examples section of every command's --help, as gh and kubectl give.

Kept in one table (command path -> lines) so that a test can check each command has
one and each example names its own command; ``app`` attaches them as epilogs.
"""

from __future__ import annotations

EXAMPLES: dict[str, tuple[str, ...]] = {
    "register": (
        "regman register training_pipeline training training.step.yaml",
        "regman register dev training - < training.step.yaml   # from stdin",
        'regman register dev training training.step.yaml -m "bigger instance" --if-revision 4',
        "regman register production training training.step.yaml --no-create --no-replace",
    ),
    "show": (
        "regman show training_pipeline training",
        "regman show training_pipeline@3 training --json   # as it was at revision 3",
    ),
    "remove": (
        "regman remove dev training -m 'replaced by training_v2'",
        "regman remove dev training --purge --yes   # and every stored version, for good",
    ),
    "validate": (
        "regman validate examples/*/*.step.yaml",
        "regman validate training.step.yaml --json",
    ),
    "import": (
        "regman import training_pipeline examples/training_pipeline/",
        "regman import dev specs/*.step.yaml --dry-run",
    ),
    "export": (
        "regman export production backup/",
        "regman export production@12 backup-12/ --force",
        "regman export production -o production.bundle.yaml   # one file, all steps",
    ),
    "stats": ("regman stats", "regman stats dev production --json"),
    "clear": (
        "regman clear dev   # asks first; 'regman restore dev' brings it back",
        "regman clear dev --purge --yes   # with all its history, for good",
        "regman clear --all --yes",
    ),
    "info": ("regman info", "regman info --json"),
    "diff": (
        "regman diff dev production",
        "regman diff production@7 production training --json",
    ),
    "history": (
        "regman history production",
        "regman history production training --limit 5 --json",
    ),
    "rollback": (
        "regman rollback production --to 7",
        "regman rollback production training --to 7 --yes -m 'the new spec broke the build'",
    ),
    "resolve": (
        "regman resolve training_pipeline",
        "regman resolve training_pipeline --format mermaid > pipeline.md",
        "regman resolve training_pipeline@3 training packaging --json",
    ),
    "explain": ("regman explain training_pipeline training input_path",),
    "restore": ("regman restore dev", "regman restore dev training"),
    "doctor": ("regman doctor", "regman doctor --repair"),
    "schema": ("regman schema > step-spec.schema.json",),
    "contexts list": ("regman contexts list", "regman contexts list -o name"),
    "contexts show": (
        "regman contexts show training_pipeline",
        "regman contexts show dev@2 --json",
    ),
    "contexts create": ("regman contexts create staging -m 'for the release candidate'",),
    "contexts set": (
        "regman contexts set production --compatibility BACKWARD -m 'no consumer may break'",
        "regman contexts set production --mode READONLY",
    ),
    "plan": (
        "regman plan production examples/environments/production/",
        "regman plan production specs/ --prune --json",
    ),
    "apply": (
        "regman apply production examples/environments/production/",
        "regman apply production specs/ --prune --yes -m 'release 42' --if-revision 7",
    ),
    "promote": (
        "regman promote dev production training",
        "regman promote staging@12 production --prune --yes",
    ),
    "contexts delete": ("regman contexts delete dev   # the same as 'regman clear dev'",),
    "trash list": ("regman trash list", "regman trash list --json"),
    "trash empty": ("regman trash empty --older-than 30 --yes",),
}


def epilog(path: str) -> str:
    """The help epilog: kept as written (click rewraps text unless a paragraph starts with \\b)."""
    lines = EXAMPLES[path]
    return "\b\nExamples:\n" + "\n".join(f"  {line}" for line in lines)
