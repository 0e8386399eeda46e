"""A prompt version as text, and what changed between two versions. Pure: PromptInfo in, text out."""

from __future__ import annotations

import difflib
import re

from bot.models import PromptInfo

ROLE_HEADING = "[{role}]"  # heads each message of a chat prompt
VERSION_LABEL = "{name} v{version}"
ALIASES_LABEL = " ({aliases})"
CONFIG_LABEL = "{label} model config"
CONFIG_LINE = "{key} = {value}"

_HUNK = re.compile(r"^@@ -\d+(?:,(\d+))? \+\d+(?:,(\d+))? @@")


def prompt_text(p: PromptInfo) -> str:
    """A text prompt's template; a chat prompt as one block per message, headed by its role."""
    if not p.is_chat:
        return p.template
    return "\n\n".join(f"{ROLE_HEADING.format(role=m.role)}\n{m.content}" for m in p.messages)


def version_label(p: PromptInfo) -> str:
    """`name v1 (@production)`: the version, and its aliases when it has any."""
    label = VERSION_LABEL.format(name=p.name, version=p.version)
    if p.aliases:
        label += ALIASES_LABEL.format(aliases=", ".join(f"@{a}" for a in p.aliases))
    return label


def config_lines(p: PromptInfo) -> list[str]:
    """The model config as `key = value` lines (values as JSON text), by key."""
    return [CONFIG_LINE.format(key=k, value=v) for k, v in sorted(p.model_config_values.items())]


def prompt_diff(new: PromptInfo, old: PromptInfo) -> str:
    """A unified diff from `old` to `new`: the prompt's text, then its model config when that changed
    too (as a second file of the same diff); "" when both are the same."""
    old_label, new_label = version_label(old), version_label(new)
    parts = list(
        difflib.unified_diff(
            prompt_text(old).splitlines(),
            prompt_text(new).splitlines(),
            fromfile=old_label,
            tofile=new_label,
            lineterm="",
        )
    )
    parts += difflib.unified_diff(
        config_lines(old),
        config_lines(new),
        fromfile=CONFIG_LABEL.format(label=old_label),
        tofile=CONFIG_LABEL.format(label=new_label),
        lineterm="",
    )
    return "\n".join(parts)


def diff_stats(diff: str) -> tuple[int, int]:
    """(lines added, lines removed) in a unified diff. Hunk headers say how many lines each hunk holds,
    so a removed line that reads `-- x` or an added `++ y` is counted, never taken for a file header."""
    added = removed = 0
    old_left = new_left = 0
    for line in diff.splitlines():
        if old_left <= 0 and new_left <= 0:
            match = _HUNK.match(line)
            if match:
                # "@@ -3 +3 @@": a count left out is 1
                old_left = int(match.group(1)) if match.group(1) is not None else 1
                new_left = int(match.group(2)) if match.group(2) is not None else 1
            continue
        if line.startswith("+"):
            added += 1
            new_left -= 1
        elif line.startswith("-"):
            removed += 1
            old_left -= 1
        elif line.startswith("\\"):  # "\ No newline at end of file"
            continue
        else:
            old_left -= 1
            new_left -= 1
    return added, removed
