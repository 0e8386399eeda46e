"""Slack mrkdwn from untrusted MLflow text: escaping, safe links, Markdown conversion, splitting.

Everything that comes out of MLflow (run names, params, tags, a run's Notes) is written by whoever
logged the run, so it must never be able to ping a channel (`<!channel>`), mention someone
(`<@U123>`) or disguise a link (`<https://evil.example|click>`). Slack only gives those meaning when
the raw `<`/`>` characters reach it, so every piece of text goes through `escape` and every link is
built by `link`.

All functions here are pure: no Slack calls, no I/O, no state between calls.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

from markdown_it import MarkdownIt
from markdown_it.tree import SyntaxTreeNode

# What a Markdown horizontal rule becomes; Slack has no rule of its own.
RULE_LINE = "———"
# Bullets per nesting level (the last one repeats below level 3).
BULLETS = ("•", "◦", "▪")
LIST_INDENT = 4
CODE_FENCE = "```"
QUOTE_PREFIX = ">"
TRUNCATION_SUFFIX = "…"
# Stands in for `|` inside a link label, where a real `|` would be read as the url/label separator.
LABEL_PIPE = "∣"
LINK_SCHEMES = frozenset({"http", "https", "mailto"})

# A zero-width space inside a run of three backticks keeps text from opening or closing a Slack code
# block: the only fences in our output are the ones we write, which `split_mrkdwn` relies on.
_ENTITIES = ("&amp;", "&lt;", "&gt;")
_MAX_ENTITY_LEN = max(len(e) for e in _ENTITIES)
_BLANK_RUN = re.compile(r"\n{3,}")
_WHITESPACE = re.compile(r"\s+")
_LIST_TYPES = frozenset({"bullet_list", "ordered_list"})
_ALIGN = re.compile(r"text-align:\s*(left|right|center)")


# Invisible characters that change how text reads without showing: zero-width spaces and joiners, and
# the bidirectional overrides and isolates that can make "evil" display as "live" (Trojan Source).
_INVISIBLE = re.compile("[\u200b-\u200f\u202a-\u202e\u2060-\u2069\ufeff]")


def escape(text: str) -> str:
    """Text from a person or from MLflow, made inert in mrkdwn: the three characters Slack treats as
    control characters escaped (so no mention, link or date can be formed), invisible direction and
    zero-width characters dropped."""
    return _INVISIBLE.sub("", text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _encode_url_char(char: str) -> str:
    return "".join(f"%{byte:02X}" for byte in char.encode("utf-8"))


def _safe_url(url: str) -> str:
    # `<`, `>`, `|` and whitespace would end the `<url|label>` syntax early; percent-encoding keeps the
    # url equivalent for the browser. `&` is entity-escaped because Slack decodes entities in urls too.
    encoded = "".join(
        _encode_url_char(c) if c in "<>|" or c.isspace() or not c.isprintable() else c for c in url
    )
    return encoded.replace("&", "&amp;")


def _is_linkable(url: str) -> bool:
    try:
        parts = urlsplit(url)
    except ValueError:
        return False
    scheme = parts.scheme.lower()
    if scheme not in LINK_SCHEMES:
        return False
    if scheme == "mailto":
        return bool(parts.path)
    return bool(parts.netloc)


def link(url: str, label: str) -> str:
    """A Slack link `<url|label>`; urls that are not http, https or mailto give the escaped label alone."""
    url = url.strip()
    label = _WHITESPACE.sub(" ", label).strip()
    if not _is_linkable(url):
        return escape(label or url)
    if not label:
        return f"<{_safe_url(url)}>"
    return f"<{_safe_url(url)}|{escape(label).replace('|', LABEL_PIPE)}>"


# --- Markdown -> mrkdwn ---------------------------------------------------------------------------


def _build_parser() -> MarkdownIt:
    # Autolinks and raw HTML are off so `<https://evil.example|click>` or `<!channel>` in a note stays
    # text (and is then escaped) instead of becoming a token we might turn into a link.
    return (
        MarkdownIt("commonmark", {"html": False, "linkify": False, "typographer": False})
        .enable(["table", "strikethrough"])
        .disable(["autolink", "html_inline", "html_block"])
    )


# Read-only after construction; `parse` keeps all its state in a per-call object.
_PARSER = _build_parser()


def _text(text: str) -> str:
    return escape_code(text)


def escape_code(text: str) -> str:
    """Escaped (`escape`), with every run of three or more backticks broken by a zero-width space, so the
    text can neither close a code block it is shown in nor open one (a run of six would keep a fence)."""
    return _BACKTICK_RUN.sub("``\u200b", escape(text))


_BACKTICK_RUN = re.compile(r"``(?=`)")


def _plain(nodes: list[SyntaxTreeNode], *, with_urls: bool = False) -> str:
    """Inline content as unformatted text (link labels, image alt text, table cells)."""
    parts: list[str] = []
    for node in nodes:
        if node.type in ("text", "code_inline", "html_inline"):
            parts.append(node.content)
        elif node.type in ("softbreak", "hardbreak"):
            parts.append(" ")
        elif node.type in ("link", "image"):
            label = _plain(node.children)
            url = str(node.attrs.get("href" if node.type == "link" else "src", ""))
            parts.append(f"{label} ({url})" if with_urls and url and url != label else label or url)
        else:
            parts.append(_plain(node.children, with_urls=with_urls))
    return "".join(parts)


def _wrap(inner: str, marker: str) -> str:
    # Slack formatting neither spans lines nor tolerates spaces inside the markers, so each line is
    # wrapped on its own with surrounding whitespace kept outside.
    lines = []
    for line in inner.split("\n"):
        core = line.strip()
        if not core:
            lines.append(line)
            continue
        lead = line[: len(line) - len(line.lstrip())]
        trail = line[len(line.rstrip()) :]
        lines.append(f"{lead}{marker}{core}{marker}{trail}")
    return "\n".join(lines)


_INLINE_MARKERS = {"strong": "*", "em": "_", "s": "~"}


def _inline(nodes: list[SyntaxTreeNode], active: frozenset[str] = frozenset()) -> str:
    """Render inline nodes; `active` holds markers already open, since Slack cannot nest the same one."""
    parts: list[str] = []
    for node in nodes:
        kind = node.type
        if kind in ("text", "html_inline"):
            parts.append(_text(node.content))
        elif kind == "code_inline":
            if node.content:
                parts.append(f"`{_text(node.content)}`")
        elif kind == "softbreak":
            # CommonMark joins soft-wrapped lines with a space.
            parts.append(" ")
        elif kind == "hardbreak":
            parts.append("\n")
        elif kind in _INLINE_MARKERS:
            marker = _INLINE_MARKERS[kind]
            inner = _inline(node.children, active | {marker})
            parts.append(inner if marker in active else _wrap(inner, marker))
        elif kind == "link":
            parts.append(link(str(node.attrs.get("href", "")), _plain(node.children)))
        elif kind == "image":
            src = str(node.attrs.get("src", ""))
            parts.append(link(src, _plain(node.children) or src))
        elif node.children:
            parts.append(_inline(node.children, active))
        else:
            parts.append(_text(node.content))
    return "".join(parts)


def _inline_of(node: SyntaxTreeNode, active: frozenset[str] = frozenset()) -> str:
    return "".join(_inline(child.children, active) for child in node.children if child.type == "inline")


def _code_block(content: str) -> list[str]:
    content = content.rstrip("\n")
    if not content.strip():
        return []
    return [CODE_FENCE, *_text(content).split("\n"), CODE_FENCE]


def _table(node: SyntaxTreeNode) -> list[str]:
    rows: list[list[str]] = []
    aligns: list[str] = []
    for section in node.children:
        for row in section.children:
            cells = [
                _plain(cell.children[0].children if cell.children else [], with_urls=True)
                for cell in row.children
            ]
            if section.type == "thead":
                for cell in row.children:
                    match = _ALIGN.search(str(cell.attrs.get("style", "")))
                    aligns.append(match.group(1) if match else "left")
            rows.append([_WHITESPACE.sub(" ", c).strip() for c in cells])
    if not rows:
        return []
    ncols = max(len(r) for r in rows)
    aligns += ["left"] * (ncols - len(aligns))
    rows = [r + [""] * (ncols - len(r)) for r in rows]
    # Widths count what Slack displays, so pad before escaping.
    widths = [max(1, *(len(r[i]) for r in rows)) for i in range(ncols)]

    def fmt(cells: list[str]) -> str:
        padded = []
        for cell, width, align in zip(cells, widths, aligns, strict=True):
            if align == "right":
                padded.append(cell.rjust(width))
            elif align == "center":
                padded.append(cell.center(width))
            else:
                padded.append(cell.ljust(width))
        return _text(" | ".join(padded))

    lines = [fmt(rows[0]), "-+-".join("-" * w for w in widths), *(fmt(r) for r in rows[1:])]
    return [CODE_FENCE, *lines, CODE_FENCE]


def _list(node: SyntaxTreeNode, depth: int) -> list[str]:
    ordered = node.type == "ordered_list"
    start = int(node.attrs.get("start", 1)) if ordered else 1
    indent = " " * (LIST_INDENT * depth)
    lines: list[str] = []
    for index, item in enumerate(node.children):
        marker = f"{start + index}." if ordered else BULLETS[min(depth, len(BULLETS) - 1)]
        hanging = indent + " " * (len(marker) + 1)
        item_lines: list[str] = []
        has_text = False
        for child in item.children:
            if child.type in _LIST_TYPES:
                # Nested lists carry their own absolute indentation.
                item_lines.extend(_list(child, depth + 1))
                continue
            for line in _block(child):
                if not has_text:
                    item_lines.append(f"{indent}{marker} {line}")
                    has_text = True
                else:
                    item_lines.append(f"{hanging}{line}" if line else "")
        if not has_text:
            item_lines.insert(0, f"{indent}{marker}")
        lines.extend(item_lines)
    return lines


def _block(node: SyntaxTreeNode) -> list[str]:
    kind = node.type
    if kind == "paragraph":
        return _inline_of(node).split("\n")
    if kind == "heading":
        text = _inline_of(node, frozenset({"*"})).replace("\n", " ").strip()
        return [f"*{text}*"] if text else []
    if kind in ("fence", "code_block"):
        return _code_block(node.content)
    if kind == "hr":
        return [RULE_LINE]
    if kind == "blockquote":
        return [f"{QUOTE_PREFIX} {line}" if line else QUOTE_PREFIX for line in _blocks(node.children)]
    if kind in _LIST_TYPES:
        return _list(node, 0)
    if kind == "table":
        return _table(node)
    if kind == "inline":
        return _inline(node.children).split("\n")
    if node.children:
        return _blocks(node.children)
    return _text(node.content).split("\n") if node.content.strip() else []


def _blocks(nodes: list[SyntaxTreeNode]) -> list[str]:
    lines: list[str] = []
    for node in nodes:
        block = _block(node)
        if not block:
            continue
        if lines:
            lines.append("")
        lines.extend(block)
    return lines


def _tidy(lines: list[str]) -> str:
    text = "\n".join(line.rstrip() for line in lines)
    return _BLANK_RUN.sub("\n\n", text).strip("\n")


def markdown_to_mrkdwn(markdown: str) -> str:
    """Render Markdown (an MLflow run's Notes) as Slack mrkdwn, with every piece of text escaped."""
    if not markdown.strip():
        return ""
    tree = SyntaxTreeNode(_PARSER.parse(markdown))
    return _tidy(_blocks(tree.children))


# --- Fitting mrkdwn into Slack's limits --------------------------------------------------------------


def _safe_cut(text: str, pos: int) -> int:
    """The nearest position at or before `pos` that is not inside an entity, a `<…>` link or a ``` run."""
    pos = max(0, min(pos, len(text)))
    while 0 < pos < len(text) and text[pos - 1] == "`" and text[pos] == "`":
        pos -= 1
    amp = text.rfind("&", max(0, pos - _MAX_ENTITY_LEN + 1), pos)
    if amp != -1:
        for entity in _ENTITIES:
            if text.startswith(entity, amp) and amp + len(entity) > pos:
                pos = amp
                break
    opening = text.rfind("<", 0, pos)
    if opening != -1:
        closing = text.find(">", opening)
        if closing == -1 or closing >= pos:
            pos = opening
    return pos


def truncate(text: str, limit: int, suffix: str = TRUNCATION_SUFFIX) -> str:
    """Cut `text` to at most `limit` characters including `suffix`, never inside an entity or link."""
    if limit < 0:
        raise ValueError("limit must not be negative")
    if len(text) <= limit:
        return text
    if limit <= len(suffix):
        return suffix[:limit]
    cut = _safe_cut(text, limit - len(suffix))
    return text[:cut].rstrip() + suffix


_REOPEN = CODE_FENCE + "\n"
_CLOSE = "\n" + CODE_FENCE


def _opens_code(piece: str, in_code: bool) -> bool:
    return in_code != (piece.count(CODE_FENCE) % 2 == 1)


def _choose_cut(window: str, rest: str) -> tuple[int, int]:
    """(end of this chunk, start of the next) within `window`, a prefix of `rest`."""
    blank = window.rfind("\n\n")
    if blank > 0:
        return blank, blank + 2
    newline = window.rfind("\n")
    if newline > 0:
        return newline, newline + 1
    cut = _safe_cut(rest, len(window))
    if cut == 0:
        # A single link or entity longer than the whole budget: better cut it than loop forever.
        cut = len(window)
    return cut, cut


def split_mrkdwn(text: str, limit: int) -> list[str]:
    """Split mrkdwn into chunks of at most `limit` characters.

    Cuts prefer blank lines, then line ends, then hard cuts that avoid entities and links. A code
    block cut in two is closed at the end of one chunk and reopened at the start of the next.
    """
    if not text.strip():
        return []
    budget = limit - len(_REOPEN) - len(_CLOSE)
    if budget < 1:
        raise ValueError(f"limit {limit} is too small to hold a reopened code block")
    chunks: list[str] = []
    rest = text.strip("\n")
    in_code = False
    while rest:
        prefix = _REOPEN if in_code else ""
        closer = _CLOSE if _opens_code(rest, in_code) else ""
        if len(prefix) + len(rest) + len(closer) <= limit:
            chunks.append(prefix + rest + closer)
            break
        end, start = _choose_cut(rest[:budget], rest)
        piece = rest[:end]
        last_line_start = piece.rfind("\n") + 1
        if (
            last_line_start > 0
            and piece[last_line_start:].strip() == CODE_FENCE
            and _opens_code(piece, in_code)
        ):
            # Do not end a chunk on a fence that only opens a block; start the next chunk with it.
            end = start = last_line_start
            piece = rest[:end]
        rest = rest[start:]
        still_open = _opens_code(piece, in_code)
        if not still_open:
            rest = rest.lstrip("\n")
        if piece.strip():
            chunks.append(prefix + piece.rstrip("\n") + (_CLOSE if still_open else ""))
        in_code = still_open
    return chunks
