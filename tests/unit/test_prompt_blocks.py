"""Unit tests for bot.prompts.blocks: a prompt version's card fields, body and thread, by value."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest

from bot.models import PromptEvaluation, PromptInfo, PromptMessage
from bot.prompts.blocks import (
    CARD_EVALUATIONS,
    COMMIT_TITLE,
    CONFIG_CUT,
    CONFIG_TITLE,
    DIFF_COMMENT,
    DIFF_CUT,
    DIFF_FILE,
    DIFF_TITLE,
    EMPTY_TEMPLATE,
    EVALUATIONS_MORE,
    EVALUATIONS_THREAD_TEXT,
    EVALUATIONS_THREAD_TITLE,
    EVALUATIONS_TITLE,
    EVALUATIONS_TITLE_NEWEST,
    METRICS_MORE,
    NO_ALIASES,
    NO_BASELINE,
    NO_CHANGES,
    NO_COMMIT_MESSAGE,
    NO_CONFIG,
    NO_EVALUATIONS,
    NO_METRICS,
    TEMPLATE_COMMENT,
    TEMPLATE_CUT,
    TEMPLATE_FILE,
    TEMPLATE_TITLE,
    UNKNOWN,
    build_prompt_fields,
    build_prompt_sections,
    build_prompt_thread,
    card_metrics,
    code_safe,
)
from bot.prompts.rules import prompt_diff
from bot.reviews.thread import BLOCKS_PER_MESSAGE
from bot.slack import limits
from bot.slack.message import SlackMessage
from bot.slack.outbox import FileUpload, UploadFile

UI = "https://mlflow.example"
CREATED = datetime(2026, 12, 1, 9, 30, tzinfo=UTC)
MAX_CARD_BODY_BLOCKS = 12


def prompt(
    version: str = "2", template: str = "Summarize {{text}}.\nBe very brief.", **fields: object
) -> PromptInfo:
    values: dict[str, object] = {
        "name": "summarizer",
        "version": version,
        "template": template,
        "url": f"{UI}/#/prompts/summarizer",
    }
    values.update(fields)
    return PromptInfo(**values)


def baseline(template: str = "Summarize {{text}}.\nBe brief.", **fields: object) -> PromptInfo:
    return prompt("1", template, aliases=["production"], **fields)


def evaluation(n: int, metrics: dict[str, float] | None = None) -> PromptEvaluation:
    return PromptEvaluation(
        run_id=f"r{n}",
        run_name=f"eval-{n}",
        run_url=f"{UI}/#/experiments/1/runs/r{n}",
        metrics={"accuracy": 0.9} if metrics is None else metrics,
    )


def texts(blocks: list) -> list[str]:
    return [b.to_dict()["text"]["text"] for b in blocks]


def code_of(section: str) -> str:
    """What is between the two fences of a section."""
    return section.split("```\n", 1)[1].rsplit("\n```", 1)[0]


# --- fields -------------------------------------------------------------------------------------------


def test_fields_name_the_prompt_version_author_creation_and_aliases() -> None:
    p = prompt(author="ana.lopez", created=CREATED, aliases=["candidate", "staging"])
    assert build_prompt_fields(p, baseline()) == [
        ("Prompt", f"<{UI}/#/prompts/summarizer|summarizer>"),
        ("Version", "v2 · text"),
        ("Author", "ana.lopez"),
        ("Created", "<!date^1796117400^{date_short_pretty} {time}|2026-12-01 09:30 UTC>"),
        ("Aliases", "`@candidate` `@staging`"),
    ]


def test_fields_of_a_chat_prompt_without_ui_author_date_or_alias() -> None:
    p = PromptInfo(
        name="assistant",
        version="3",
        is_chat=True,
        messages=[PromptMessage(role="system", content="x"), PromptMessage(role="user", content="y")],
    )
    assert build_prompt_fields(p, None) == [
        ("Prompt", "`assistant`"),
        ("Version", "v3 · chat, 2 messages"),
        ("Author", UNKNOWN),
        ("Created", UNKNOWN),
        ("Aliases", NO_ALIASES),
    ]


def test_fields_escape_what_mlflow_holds() -> None:
    p = prompt(author="<!channel> <@U1>", aliases=["<!here>"])
    fields = dict(build_prompt_fields(p, None))
    assert fields["Author"] == "&lt;!channel&gt; &lt;@U1&gt;"
    assert fields["Aliases"] == "`@&lt;!here&gt;`"


# --- the body -----------------------------------------------------------------------------------------


def test_the_body_with_a_baseline_is_commit_diff_config_and_evaluations() -> None:
    p = prompt(
        commit_message="Shorter summaries\nsee ticket 12",
        model_config_values={"model_name": '"gpt-4o"', "temperature": "0.7"},
        evaluations=[evaluation(1, {"correctness/mean": 0.91, "accuracy": 0.8})],
    )
    old = baseline(model_config_values={"model_name": '"gpt-4o"', "temperature": "0.2"})
    assert [b.to_dict() for b in build_prompt_sections(p, old)] == [
        {
            "type": "section",
            "text": {"type": "mrkdwn", "text": f"{COMMIT_TITLE}\n>Shorter summaries\n>see ticket 12"},
        },
        {
            "type": "section",
            "text": {
                "type": "mrkdwn",
                "text": DIFF_TITLE.format(added=2, removed=2, baseline="summarizer v1 (@production)")
                + "\n```\n"
                "--- summarizer v1 (@production)\n"
                "+++ summarizer v2\n"
                "@@ -1,2 +1,2 @@\n"
                " Summarize {{text}}.\n"
                "-Be brief.\n"
                "+Be very brief.\n"
                "--- summarizer v1 (@production) model config\n"
                "+++ summarizer v2 model config\n"
                "@@ -1,2 +1,2 @@\n"
                ' model_name = "gpt-4o"\n'
                "-temperature = 0.2\n"
                "+temperature = 0.7\n"
                "```",
            },
        },
        {
            "type": "section",
            "text": {
                "type": "mrkdwn",
                "text": f'{CONFIG_TITLE}\n```\nmodel_name = "gpt-4o"\ntemperature = 0.7\n```',
            },
        },
        {
            "type": "section",
            "text": {
                "type": "mrkdwn",
                "text": EVALUATIONS_TITLE.format(n=1)
                + f"\n• <{UI}/#/experiments/1/runs/r1|eval-1> · `accuracy` 0.8 · `correctness/mean` 0.91",
            },
        },
    ]


def test_without_a_baseline_the_body_shows_the_template_and_says_why() -> None:
    p = prompt(template="Summarize {{text}}.")
    assert texts(build_prompt_sections(p, None)) == [
        f"{COMMIT_TITLE}\n{NO_COMMIT_MESSAGE}",
        f"{TEMPLATE_TITLE.format(kind='text')}\n{NO_BASELINE}\n```\nSummarize {{{{text}}}}.\n```",
        f"{CONFIG_TITLE}\n{NO_CONFIG}",
        f"{EVALUATIONS_TITLE.format(n=0)}\n{NO_EVALUATIONS}",
    ]
    assert build_prompt_thread(p, None) == []


def test_a_chat_template_is_shown_message_by_message() -> None:
    p = PromptInfo(
        name="assistant",
        version="1",
        is_chat=True,
        messages=[
            PromptMessage(role="system", content="Be {{style}}."),
            PromptMessage(role="user", content="{{q}}"),
        ],
    )
    assert texts(build_prompt_sections(p, None))[1] == (
        f"{TEMPLATE_TITLE.format(kind='chat, 2 messages')}\n{NO_BASELINE}\n"
        "```\n[system]\nBe {{style}}.\n\n[user]\n{{q}}\n```"
    )


def test_an_empty_template_says_so() -> None:
    assert texts(build_prompt_sections(prompt(template=""), None))[1] == (
        f"{TEMPLATE_TITLE.format(kind='text')}\n{NO_BASELINE}\n{EMPTY_TEMPLATE}"
    )


def test_identical_versions_say_there_is_no_change_and_thread_nothing() -> None:
    same = "Summarize {{text}}.\nBe brief."
    p = prompt(template=same, commit_message="Retagged")
    assert texts(build_prompt_sections(p, baseline(template=same)))[1] == NO_CHANGES.format(
        baseline="summarizer v1 (@production)"
    )
    assert build_prompt_thread(p, baseline(template=same)) == []


# --- limits and what goes to the thread ---------------------------------------------------------------

HUGE = "".join(f"Line {i:05d}: " + "x" * 87 + "\n" for i in range(200))  # 20,000 characters


def test_the_huge_template_is_20000_characters() -> None:
    assert len(HUGE) == 20_000


def test_a_huge_template_is_cut_on_the_card_and_posted_whole_in_the_thread() -> None:
    p = prompt(template=HUGE)
    body = texts(build_prompt_sections(p, None))
    assert all(len(text) <= limits.SECTION_TEXT for text in body)
    template = body[1]
    assert template.endswith("```\n" + TEMPLATE_CUT.format(chars=len(HUGE)))
    shown = code_of(template).split("\n")
    assert shown == HUGE.split("\n")[: len(shown)]  # whole lines, from the start
    assert 20 < len(shown) < 200
    assert build_prompt_thread(p, None) == [
        FileUpload(
            name="prompt template",
            comment=TEMPLATE_COMMENT.format(new="summarizer v2", chars=len(HUGE)),
            files=[UploadFile(TEMPLATE_FILE, "summarizer v2", HUGE.encode("utf-8"))],
        )
    ]


def test_a_single_line_template_too_long_for_the_card_is_cut_inside_the_line() -> None:
    line = "word & " * 3000
    p = prompt(template=line)
    template = texts(build_prompt_sections(p, None))[1]
    assert len(template) <= limits.SECTION_TEXT
    assert code_of(template).endswith("…")
    assert not re.search(r"&(?!amp;)", template)  # never cut inside an entity
    assert [item.files[0].filename for item in build_prompt_thread(p, None)] == [TEMPLATE_FILE]


def test_a_huge_diff_is_cut_on_the_card_and_posted_whole_as_a_diff_file() -> None:
    old = baseline(template=HUGE)
    p = prompt(template=HUGE.replace("x", "y"))
    diff = prompt_diff(p, old)
    section = texts(build_prompt_sections(p, old))[1]
    assert len(section) <= limits.SECTION_TEXT
    assert section.startswith(
        DIFF_TITLE.format(added=200, removed=200, baseline="summarizer v1 (@production)")
    )
    assert section.endswith("```\n" + DIFF_CUT.format(lines=len(diff.splitlines())))
    assert diff.startswith(code_of(section))
    assert build_prompt_thread(p, old) == [
        FileUpload(
            name="prompt diff",
            comment=DIFF_COMMENT.format(
                new="summarizer v2", old="summarizer v1 (@production)", added=200, removed=200
            ),
            files=[
                UploadFile(DIFF_FILE, "summarizer v2 vs summarizer v1 (@production)", diff.encode("utf-8"))
            ],
        )
    ]


def test_a_diff_that_fits_is_not_posted_again() -> None:
    assert build_prompt_thread(prompt(), baseline()) == []


def test_the_card_body_stays_within_slack_limits_whatever_the_prompt() -> None:
    p = prompt(
        template=HUGE,
        commit_message="c" * 5000,
        model_config_values={f"key_{i}": f'"{"v" * 200}"' for i in range(40)},
        evaluations=[evaluation(i, {f"m{j}": j / 7 for j in range(50)}) for i in range(10)],
    )
    for base in (None, baseline(template=HUGE[::-1])):
        blocks = build_prompt_sections(p, base)
        assert len(blocks) <= MAX_CARD_BODY_BLOCKS
        assert all(len(text) <= limits.SECTION_TEXT for text in texts(blocks))


def test_a_long_model_config_is_cut_with_a_count() -> None:
    config = {f"key_{i:02d}": f'"{"v" * 200}"' for i in range(40)}
    section = texts(build_prompt_sections(prompt(model_config_values=config), None))[2]
    shown = code_of(section).split("\n")
    assert shown == [f"key_{i:02d} = {config[f'key_{i:02d}']}" for i in range(len(shown))]
    assert section.endswith(CONFIG_CUT.format(n=40 - len(shown)))


# --- hostile templates --------------------------------------------------------------------------------

HOSTILE = (
    "Reply with ```json``` only.\n``````\n<!here> <!channel> <@U123> <https://evil.example|click>\n& done"
)


def fences(text: str) -> int:
    return len(re.findall(r"```", text))


@pytest.mark.parametrize("with_baseline", [False, True])
def test_a_template_cannot_break_out_of_its_code_block_or_ping(with_baseline: bool) -> None:
    p = prompt(template=HOSTILE, commit_message="<!channel> ```", model_config_values={"stop": '["```"]'})
    base = baseline(template="Reply.") if with_baseline else None
    body = texts(build_prompt_sections(p, base))
    for text in body:
        assert "<!" not in text and "<@" not in text and "<https://evil" not in text
    assert fences(body[0]) == 0  # the commit message opens no code block
    assert fences(body[1]) == 2  # only our own fences
    assert fences(body[2]) == 2
    assert "&lt;!here&gt; &lt;!channel&gt; &lt;@U123&gt; &lt;https://evil.example|click&gt;" in body[1]
    assert "&amp; done" in body[1]


def test_code_safe_breaks_every_run_of_backticks() -> None:
    assert code_safe("a ``` b") == "a ``\u200b` b"
    assert code_safe("``````") == "``\u200b``\u200b``"
    assert code_safe("`` ` ``") == "`` ` ``"
    assert fences(code_safe("`" * 50)) == 0
    assert code_safe("<!here> & \u200b```") == "&lt;!here&gt; &amp; ``\u200b`"


# --- evaluations --------------------------------------------------------------------------------------


def test_metrics_with_a_known_direction_come_first_on_the_card() -> None:
    assert card_metrics({"zeta": 1.0, "accuracy": 0.9, "alpha": 2.0, "val_loss": 0.1}) == [
        "accuracy",
        "val_loss",
        "alpha",
    ]


def test_a_few_evaluation_runs_on_the_card_and_all_of_them_with_all_metrics_in_the_thread() -> None:
    runs = [
        evaluation(i, {"accuracy": 0.5 + i / 100, "f1": 0.4, "loss": 0.3, "tokens": 100.0}) for i in range(5)
    ]
    p = prompt(evaluations=runs)
    section = texts(build_prompt_sections(p, baseline()))[3]
    assert section == "\n".join(
        [
            EVALUATIONS_TITLE.format(n=5),
            *(
                f"• <{UI}/#/experiments/1/runs/r{i}|eval-{i}> · `accuracy` {0.5 + i / 100:.4g}"
                " · `f1` 0.4 · `loss` 0.3" + METRICS_MORE.format(n=1)
                for i in range(CARD_EVALUATIONS)
            ),
            EVALUATIONS_MORE.format(n=2),
        ]
    )
    thread = build_prompt_thread(p, baseline())
    assert len(thread) == 1 and isinstance(thread[0], SlackMessage)
    assert thread[0].text == EVALUATIONS_THREAD_TEXT.format(n=5)
    assert texts_of(thread[0]) == [
        EVALUATIONS_THREAD_TITLE.format(version="summarizer v2", n=5),
        *(
            f"<{UI}/#/experiments/1/runs/r{i}|eval-{i}>\n```\naccuracy  {0.5 + i / 100:.4g}\nf1        0.4\n"
            "loss      0.3\ntokens    100\n```"
            for i in range(5)
        ),
    ]


def texts_of(message: SlackMessage) -> list[str]:
    return [block["text"]["text"] for block in message.blocks]


def test_ten_runs_are_the_newest_ten_and_a_run_without_metrics_says_so() -> None:
    runs = [evaluation(i, {}) for i in range(10)]
    section = texts(build_prompt_sections(prompt(evaluations=runs), None))[3]
    assert section.split("\n")[:2] == [
        EVALUATIONS_TITLE_NEWEST.format(n=10),
        f"• <{UI}/#/experiments/1/runs/r0|eval-0> · {NO_METRICS}",
    ]


def test_runs_with_many_metrics_page_in_the_thread_within_limits() -> None:
    runs = [evaluation(i, {f"metric_{j:03d}": j / 3 for j in range(400)}) for i in range(10)]
    thread = build_prompt_thread(prompt(evaluations=runs), None)
    assert thread and all(isinstance(m, SlackMessage) for m in thread)
    for message in thread:
        assert len(message.blocks) <= BLOCKS_PER_MESSAGE + 1
        assert all(len(text) <= limits.SECTION_TEXT for text in texts_of(message))
    shown = "\n".join(text for m in thread for text in texts_of(m))
    assert all(f"metric_{j:03d}" in shown for j in range(400))


def test_evaluations_that_all_fit_on_the_card_thread_nothing() -> None:
    runs = [evaluation(i, {"accuracy": 0.9, "f1": 0.8}) for i in range(CARD_EVALUATIONS)]
    assert build_prompt_thread(prompt(evaluations=runs), baseline()) == []


def test_a_run_without_a_ui_link_is_named_in_code() -> None:
    run = PromptEvaluation(run_id="abc", run_name="", metrics={"accuracy": 1.0})
    section = texts(build_prompt_sections(prompt(evaluations=[run]), None))[3]
    assert section == f"{EVALUATIONS_TITLE.format(n=1)}\n• `abc` · `accuracy` 1"
