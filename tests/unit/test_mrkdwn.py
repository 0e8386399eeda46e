"""Unit tests for bot.slack.mrkdwn: escaping, links, Markdown conversion, splitting, truncation."""

from __future__ import annotations

import re

import pytest

from bot.slack.mrkdwn import (
    BULLETS,
    CODE_FENCE,
    LABEL_PIPE,
    RULE_LINE,
    TRUNCATION_SUFFIX,
    escape,
    link,
    markdown_to_mrkdwn,
    split_mrkdwn,
    truncate,
)

HOSTILE = ["<!channel>", "<!here>", "<@U1>", "<https://evil.example|click>"]
ESCAPED = {
    "<!channel>": "&lt;!channel&gt;",
    "<!here>": "&lt;!here&gt;",
    "<@U1>": "&lt;@U1&gt;",
    "<https://evil.example|click>": "&lt;https://evil.example|click&gt;",
}


def _no_live_slack_syntax(text: str) -> None:
    """No `<` may open a Slack special (mention, channel ping, or a link to evil.example)."""
    assert "<!" not in text
    assert "<@" not in text
    assert "<https://evil.example" not in text


# --- escape ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("raw", HOSTILE)
def test_escape_neutralises_slack_specials(raw: str) -> None:
    assert escape(raw) == ESCAPED[raw]


def test_escape_ampersand_first_so_entities_are_not_double_decoded() -> None:
    assert escape("a & b &lt; c > d") == "a &amp; b &amp;lt; c &gt; d"


def test_escape_leaves_other_text_alone() -> None:
    assert escape("loss *0.3* _x_ `y` ~z~ | é") == "loss *0.3* _x_ `y` ~z~ | é"


# --- link ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "label", "expected"),
    [
        ("https://mlflow.example/#/runs/1", "run 1", "<https://mlflow.example/#/runs/1|run 1>"),
        ("http://x.example", "x", "<http://x.example|x>"),
        ("mailto:a@b.example", "mail", "<mailto:a@b.example|mail>"),
        ("HTTPS://X.EXAMPLE", "up", "<HTTPS://X.EXAMPLE|up>"),
        ("https://x.example", "", "<https://x.example>"),
        ("https://x.example", "<!channel>", "<https://x.example|&lt;!channel&gt;>"),
        ("https://x.example", "a|b>c", f"<https://x.example|a{LABEL_PIPE}b&gt;c>"),
        ("https://x.example", "two\nlines", "<https://x.example|two lines>"),
        ("https://x.example/a b", "s", "<https://x.example/a%20b|s>"),
        ("https://x.example/?q=<a>|b", "s", "<https://x.example/?q=%3Ca%3E%7Cb|s>"),
        ("https://x.example/?a=1&b=2", "s", "<https://x.example/?a=1&amp;b=2|s>"),
        ("https://x.example/\t\n", "s", "<https://x.example/|s>"),
    ],
)
def test_link_builds_safe_slack_links(url: str, label: str, expected: str) -> None:
    assert link(url, label) == expected


@pytest.mark.parametrize(
    "url",
    [
        "javascript:alert(1)",
        "JavaScript:alert(1)",
        "data:text/html,<b>x</b>",
        "file:///etc/passwd",
        "ftp://x.example",
        "/relative/path",
        "https:no-host",
        "",
    ],
)
def test_link_only_links_http_https_mailto(url: str) -> None:
    assert link(url, "click <!here>") == "click &lt;!here&gt;"


def test_link_without_scheme_or_label_shows_url_as_text() -> None:
    assert link("javascript:alert(1)", "") == "javascript:alert(1)"


# --- markdown_to_mrkdwn: constructs ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("markdown", "expected"),
    [
        ("# Results", "*Results*"),
        ("### Deep **bold** heading", "*Deep bold heading*"),
        ("Results\n=======", "*Results*"),
        ("**bold**", "*bold*"),
        ("__bold__", "*bold*"),
        ("*it* and _it_", "_it_ and _it_"),
        ("~~gone~~", "~gone~"),
        ("***both***", "_*both*_"),
        ("*outer _inner_ outer*", "_outer inner outer_"),
        ("use `pip install x<2`", "use `pip install x&lt;2`"),
        ("[docs](https://docs.example/a)", "<https://docs.example/a|docs>"),
        ("[**bold** label](https://x.example)", "<https://x.example|bold label>"),
        ("![loss curve](https://img.example/l.png)", "<https://img.example/l.png|loss curve>"),
        ("![](https://img.example/l.png)", "<https://img.example/l.png|https://img.example/l.png>"),
        ("line one\nline two", "line one line two"),
        ("line one  \nline two", "line one\nline two"),
        ("line one\\\nline two", "line one\nline two"),
        ("**bold  \nacross**", "*bold*\n*across*"),
        ("a & b", "a &amp; b"),
        ("&lt;!channel&gt;", "&lt;!channel&gt;"),
        ("\\*not italic\\*", "*not italic*"),
        ("---", RULE_LINE),
        ("***", RULE_LINE),
        ("", ""),
        ("   \n\n  ", ""),
    ],
)
def test_inline_and_simple_blocks(markdown: str, expected: str) -> None:
    assert markdown_to_mrkdwn(markdown) == expected


def test_paragraphs_and_headings_separated_by_one_blank_line() -> None:
    markdown = "# Title\nFirst para.\n\n\n\nSecond para.\n\n---\n\nEnd."
    expected = f"*Title*\n\nFirst para.\n\nSecond para.\n\n{RULE_LINE}\n\nEnd."
    assert markdown_to_mrkdwn(markdown) == expected


def test_fenced_code_is_escaped_not_formatted() -> None:
    markdown = "```python\nif a < b and **c**:\n    print('<!channel>')\n```"
    expected = "```\nif a &lt; b and **c**:\n    print('&lt;!channel&gt;')\n```"
    assert markdown_to_mrkdwn(markdown) == expected


def test_indented_code_block() -> None:
    assert markdown_to_mrkdwn("Text:\n\n    x = 1 & 2\n    y = [a](b)\n") == (
        "Text:\n\n```\nx = 1 &amp; 2\ny = [a](b)\n```"
    )


def test_backtick_runs_in_text_cannot_open_a_code_block() -> None:
    result = markdown_to_mrkdwn("````\nhas ``` inside\n````")
    assert result.count(CODE_FENCE) == 2
    assert result.startswith(CODE_FENCE + "\nhas ``")
    assert result.endswith("inside\n" + CODE_FENCE)


def test_bullet_list_nested_levels() -> None:
    markdown = "- one\n- two\n  - two.a\n    - two.a.i\n      - deeper\n- three"
    expected = "\n".join(
        [
            f"{BULLETS[0]} one",
            f"{BULLETS[0]} two",
            f"    {BULLETS[1]} two.a",
            f"        {BULLETS[2]} two.a.i",
            f"            {BULLETS[2]} deeper",
            f"{BULLETS[0]} three",
        ]
    )
    assert markdown_to_mrkdwn(markdown) == expected


def test_ordered_list_keeps_start_number() -> None:
    assert markdown_to_mrkdwn("3. three\n4. four\n7. five") == "3. three\n4. four\n5. five"


def test_ordered_list_with_nested_bullets_and_formatting() -> None:
    markdown = "1. **first**\n   - sub `x`\n2. second"
    expected = f"1. *first*\n    {BULLETS[1]} sub `x`\n2. second"
    assert markdown_to_mrkdwn(markdown) == expected


def test_list_item_continuation_lines_hang_under_text() -> None:
    markdown = "- first line  \n  second line\n\n  second para"
    assert markdown_to_mrkdwn(markdown) == f"{BULLETS[0]} first line\n  second line\n  second para"


def test_blockquote_prefixes_every_line() -> None:
    markdown = "> quoted **text**\n> still\n>\n> second para\n\nafter"
    expected = "> quoted *text* still\n>\n> second para\n\nafter"
    assert markdown_to_mrkdwn(markdown) == expected


def test_literal_gt_in_text_is_not_a_quote() -> None:
    assert markdown_to_mrkdwn("\\> not a quote") == "&gt; not a quote"


def test_table_becomes_aligned_code_block() -> None:
    markdown = "| metric | value | note |\n|:--|--:|:-:|\n| loss | 0.25 | ok |\n| accuracy | 0.9 | a&b |"
    expected = "\n".join(
        [
            CODE_FENCE,
            "metric   | value | note",
            "---------+-------+-----",
            "loss     |  0.25 |  ok",
            "accuracy |   0.9 | a&amp;b",
            CODE_FENCE,
        ]
    )
    assert markdown_to_mrkdwn(markdown) == expected


def test_table_cells_are_plain_text_with_urls_kept() -> None:
    markdown = "| a | b |\n|---|---|\n| **x** | [doc](https://d.example) |"
    expected = "\n".join([CODE_FENCE, "a | b", "--+-" + "-" * 23, "x | doc (https://d.example)", CODE_FENCE])
    assert markdown_to_mrkdwn(markdown) == expected


def test_raw_html_is_shown_escaped() -> None:
    assert markdown_to_mrkdwn("<div>hi</div>\n\ntext <b>bold</b>") == (
        "&lt;div&gt;hi&lt;/div&gt;\n\ntext &lt;b&gt;bold&lt;/b&gt;"
    )


def test_autolink_syntax_stays_literal() -> None:
    assert markdown_to_mrkdwn("see <https://evil.example|click>") == "see &lt;https://evil.example|click&gt;"


def test_bare_url_is_not_rewritten() -> None:
    assert markdown_to_mrkdwn("see https://ok.example/x") == "see https://ok.example/x"


def test_javascript_markdown_link_is_not_linked() -> None:
    result = markdown_to_mrkdwn("[click](javascript:alert(1)) and ![img](javascript:alert(2))")
    assert "<javascript" not in result
    assert "|" not in result
    assert result.startswith("[click](javascript:alert(1))")


def test_data_image_shows_alt_text_only() -> None:
    assert markdown_to_mrkdwn("![plot](data:image/png;base64,AAAA)") == "plot"


def test_output_has_no_trailing_whitespace_or_double_blank_lines() -> None:
    markdown = "a   \n\n\n\n- b   \n\n\n\n    code   \n\n\n\n\n    more\n\n> q  \n>\n>\n> r"
    result = markdown_to_mrkdwn(markdown)
    assert all(line == line.rstrip() for line in result.split("\n"))
    assert "\n\n\n" not in result
    assert result == result.strip()


# --- markdown_to_mrkdwn: hostile text in every construct ----------------------------------------------


@pytest.mark.parametrize("raw", HOSTILE)
@pytest.mark.parametrize(
    ("template", "expected_template"),
    [
        ("before {} after", "before {} after"),
        ("# Title {}", "*Title {}*"),
        ("- item {}", f"{BULLETS[0]} item {{}}"),
        ("1. item {}", "1. item {}"),
        ("> quote {}", "> quote {}"),
        ("`{}`", "`{}`"),
        ("```\n{}\n```", "```\n{}\n```"),
        ("[label {}](https://ok.example)", "<https://ok.example|label {}>"),
        ("**{}**", "*{}*"),
    ],
)
def test_hostile_text_escaped_everywhere(raw: str, template: str, expected_template: str) -> None:
    escaped = ESCAPED[raw]
    if template.startswith("[label"):
        escaped = escaped.replace("|", LABEL_PIPE)
    result = markdown_to_mrkdwn(template.format(raw))
    assert result == expected_template.format(escaped)
    _no_live_slack_syntax(result)


def test_hostile_text_in_table_cell_escaped() -> None:
    result = markdown_to_mrkdwn("| a |\n|---|\n| <!channel> |")
    assert "&lt;!channel&gt;" in result
    _no_live_slack_syntax(result)


@pytest.mark.parametrize(
    ("markdown", "expected"),
    [
        ("[x](https://ok.example/?q=a|b>c)", "<https://ok.example/?q=a%7Cb%3Ec|x>"),
        ("[x](https://ok.example/?q=<!channel>)", "<https://ok.example/?q=%3C!channel%3E|x>"),
        ("[x](<https://ok.example/a b|c>)", "<https://ok.example/a%20b%7Cc|x>"),
    ],
)
def test_hostile_link_target_is_encoded(markdown: str, expected: str) -> None:
    result = markdown_to_mrkdwn(markdown)
    assert result == expected
    _no_live_slack_syntax(result)


# --- split_mrkdwn ------------------------------------------------------------------------------------


def test_split_empty_text() -> None:
    assert split_mrkdwn("", 100) == []
    assert split_mrkdwn("\n\n  \n", 100) == []


def test_split_short_text_is_one_chunk() -> None:
    assert split_mrkdwn("hello\n\nworld", 100) == ["hello\n\nworld"]


def test_split_prefers_blank_lines() -> None:
    text = "aaaa aaaa\nbbbb\n\ncccc cccc\ndddd"
    assert split_mrkdwn(text, 25) == ["aaaa aaaa\nbbbb", "cccc cccc\ndddd"]


def test_split_falls_back_to_line_boundaries() -> None:
    text = "line one\nline two\nline three\nline four"
    assert split_mrkdwn(text, 28) == ["line one\nline two", "line three\nline four"]


def test_split_hard_cut_never_inside_entity() -> None:
    text = "x" * 8 + "&amp;" + "y" * 10
    chunks = split_mrkdwn(text, 20)  # budget of 12 characters would land inside "&amp;"
    assert chunks == ["x" * 8, "&amp;" + "y" * 10]


def test_split_hard_cut_never_inside_link() -> None:
    text = "words " * 3 + link("https://a.example/x", "label") + " tail tail"
    chunks = split_mrkdwn(text, 40)  # the 32-character budget would end inside the link
    assert chunks == ["words " * 3, "<https://a.example/x|label> tail tail"]


def test_split_rebalances_code_fences() -> None:
    code = "\n".join(f"line {i}" for i in range(20))
    text = f"intro\n\n{CODE_FENCE}\n{code}\n{CODE_FENCE}\n\noutro"
    chunks = split_mrkdwn(text, 60)
    assert len(chunks) > 2
    assert all(len(chunk) <= 60 for chunk in chunks)
    assert all(chunk.count(CODE_FENCE) % 2 == 0 for chunk in chunks)
    joined = "\n".join(chunks)
    assert all(f"line {i}" in joined for i in range(20))
    assert chunks[0] == "intro"
    assert chunks[-1].endswith("outro")
    assert sum(chunk.startswith(CODE_FENCE + "\nline") for chunk in chunks) >= 2


def test_split_rejects_tiny_limit() -> None:
    with pytest.raises(ValueError):
        split_mrkdwn("some text", 8)


def _long_note() -> str:
    sections = []
    for i in range(60):
        sections.append(
            f"## Section {i}\n\nParagraph word{i}a with **bold{i}** and a [link{i}](https://x.example/{i}) "
            f"and <!channel> noise & more text to pad out the section a little further.\n\n"
            f"- item{i}x\n- item{i}y\n  - nested{i}\n\n"
            f"```\ncode{i}_1 = 1 < 2\n" + "\n".join(f"code{i}_{j} = {j}" for j in range(2, 25)) + "\n```\n\n"
            f"> quote{i}\n\n| k{i} | v |\n|---|---:|\n| a | 1 |\n"
        )
    # One code block longer than a chunk, so the split has to close and reopen it.
    sections.insert(30, "```\n" + "\n".join(f"big_{j} = {j} & {j}" for j in range(400)) + "\n```\n")
    note = "\n".join(sections)
    while len(note) < 30_000:
        note += f"\n\nfiller{len(note)} " + "pad " * 50
    return note


def test_split_long_note_within_limit_balanced_and_lossless() -> None:
    note = _long_note()
    assert len(note) >= 30_000
    rendered = markdown_to_mrkdwn(note)
    chunks = split_mrkdwn(rendered, 3000)
    assert len(chunks) >= 10
    assert all(0 < len(chunk) <= 3000 for chunk in chunks)
    assert all(chunk.count(CODE_FENCE) % 2 == 0 for chunk in chunks)
    assert any(chunk.startswith(CODE_FENCE + "\nbig_") for chunk in chunks)
    for chunk in chunks:
        # No chunk may start or end inside an entity.
        assert not re.search(r"&[a-z]{0,3}$", chunk)
        assert not re.match(r"^(amp|lt|gt|mp|t)?;", chunk)
    words_in = re.findall(r"[A-Za-z0-9_]+", rendered)
    words_out = re.findall(r"[A-Za-z0-9_]+", "\n".join(chunks))
    assert words_out == words_in
    assert all(f"word{i}a" in words_out and f"code{i}_24" in words_out for i in range(60))
    _no_live_slack_syntax("\n".join(chunks))


def test_split_one_huge_line() -> None:
    text = "word " * 2000
    chunks = split_mrkdwn(text, 500)
    assert all(len(chunk) <= 500 for chunk in chunks)
    assert len(chunks) > 20
    assert "".join(chunks) == text


# --- truncate -----------------------------------------------------------------------------------------


def test_truncate_short_text_unchanged() -> None:
    assert truncate("abc", 3) == "abc"
    assert truncate("", 0) == ""


def test_truncate_adds_suffix_within_limit() -> None:
    assert truncate("abcdefgh", 5) == "abcd" + TRUNCATION_SUFFIX
    assert len(truncate("abcdefgh", 5)) == 5


def test_truncate_custom_suffix() -> None:
    assert truncate("abcdefgh", 6, suffix="...") == "abc..."


def test_truncate_limit_not_above_suffix() -> None:
    assert truncate("abcdefgh", 1) == TRUNCATION_SUFFIX
    assert truncate("abcdefgh", 2, suffix="...") == ".."
    assert truncate("abcdefgh", 0) == ""


def test_truncate_negative_limit_rejected() -> None:
    with pytest.raises(ValueError):
        truncate("abc", -1)


@pytest.mark.parametrize(
    ("limit", "expected"),
    [
        (3, "ab"),
        (4, "ab"),  # a cut after "ab&" would leave a broken entity
        (6, "ab"),
        (7, "ab"),
        (8, "ab&amp;"),
        (9, "ab&amp;c"),
    ],
)
def test_truncate_never_inside_entity(limit: int, expected: str) -> None:
    assert truncate("ab&amp;cdefghij", limit) == expected + TRUNCATION_SUFFIX


def test_truncate_keeps_whole_entity_when_it_fits() -> None:
    assert truncate("a &lt; b and more", 8) == "a &lt;" + TRUNCATION_SUFFIX


def test_truncate_never_inside_link() -> None:
    text = "see " + link("https://x.example/long/path", "the run") + " for details"
    for limit in range(5, len(text)):
        result = truncate(text, limit)
        assert len(result) <= limit
        assert result.count("<") == result.count(">")
    assert truncate(text, 20) == "see" + TRUNCATION_SUFFIX
    link_end = text.index(">") + 1
    assert truncate(text, link_end + 1) == text[:link_end] + TRUNCATION_SUFFIX


def test_truncate_strips_trailing_space_before_suffix() -> None:
    assert truncate("hello world again", 7) == "hello" + TRUNCATION_SUFFIX


@pytest.mark.parametrize("run", [3, 4, 6, 7, 9])
def test_no_run_of_backticks_survives_to_open_a_code_block(run: int) -> None:
    text = markdown_to_mrkdwn(f"before {'`' * run} after\n\n    {'`' * run} indented")
    assert "`" * 3 not in "".join(line for line in text.splitlines() if not line.startswith("```"))
