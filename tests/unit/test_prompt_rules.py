"""Unit tests for bot.prompts.rules: a prompt version as text, the diff of two versions, its counts."""

from __future__ import annotations

import pytest

from bot.models import PromptInfo, PromptMessage
from bot.prompts.rules import config_lines, diff_stats, prompt_diff, prompt_text, version_label


def text_prompt(version: str, template: str, **fields: object) -> PromptInfo:
    return PromptInfo(name="summarizer", version=version, template=template, **fields)


def chat_prompt(version: str, *messages: tuple[str, str], **fields: object) -> PromptInfo:
    return PromptInfo(
        name="assistant",
        version=version,
        is_chat=True,
        messages=[PromptMessage(role=role, content=content) for role, content in messages],
        **fields,
    )


def test_a_text_prompt_is_its_template() -> None:
    assert prompt_text(text_prompt("1", "Summarize {{text}}.\nBe brief.")) == "Summarize {{text}}.\nBe brief."


def test_a_chat_prompt_is_one_block_per_message_headed_by_its_role() -> None:
    p = chat_prompt("1", ("system", "You are {{style}}."), ("user", "{{question}}\nThanks"))
    assert prompt_text(p) == "[system]\nYou are {{style}}.\n\n[user]\n{{question}}\nThanks"


def test_a_version_is_labelled_with_its_aliases() -> None:
    assert version_label(text_prompt("2", "x")) == "summarizer v2"
    assert (
        version_label(text_prompt("1", "x", aliases=["production", "staging"]))
        == "summarizer v1 (@production, @staging)"
    )


def test_the_model_config_is_key_value_lines_by_key() -> None:
    p = text_prompt("1", "x", model_config_values={"temperature": "0.2", "model_name": '"gpt-4o"'})
    assert config_lines(p) == ['model_name = "gpt-4o"', "temperature = 0.2"]


def test_a_changed_template_is_a_unified_diff_naming_both_versions() -> None:
    old = text_prompt("1", "Summarize {{text}}.\nBe brief.\nUse English.", aliases=["production"])
    new = text_prompt("2", "Summarize {{text}}.\nBe very brief.\nUse English.")
    assert prompt_diff(new, old) == (
        "--- summarizer v1 (@production)\n"
        "+++ summarizer v2\n"
        "@@ -1,3 +1,3 @@\n"
        " Summarize {{text}}.\n"
        "-Be brief.\n"
        "+Be very brief.\n"
        " Use English."
    )


def test_identical_versions_have_no_diff() -> None:
    config = {"temperature": "0.2"}
    old = text_prompt("1", "Same.\nText.", model_config_values=config, aliases=["production"])
    new = text_prompt("2", "Same.\nText.", model_config_values=config, commit_message="no-op")
    assert prompt_diff(new, old) == ""


def test_a_model_config_change_is_a_second_file_of_the_diff() -> None:
    old = text_prompt("1", "Same.", model_config_values={"model_name": '"gpt-4o"', "temperature": "0.2"})
    new = text_prompt("2", "Same.", model_config_values={"model_name": '"gpt-4o"', "max_tokens": "500"})
    assert prompt_diff(new, old) == (
        "--- summarizer v1 model config\n"
        "+++ summarizer v2 model config\n"
        "@@ -1,2 +1,2 @@\n"
        "+max_tokens = 500\n"
        ' model_name = "gpt-4o"\n'
        "-temperature = 0.2"
    )


def test_a_template_and_config_change_diff_both() -> None:
    old = text_prompt("1", "A", model_config_values={"temperature": "0.2"})
    new = text_prompt("2", "B", model_config_values={"temperature": "0.7"})
    assert prompt_diff(new, old) == (
        "--- summarizer v1\n+++ summarizer v2\n@@ -1 +1 @@\n-A\n+B\n"
        "--- summarizer v1 model config\n+++ summarizer v2 model config\n@@ -1 +1 @@\n"
        "-temperature = 0.2\n+temperature = 0.7"
    )


def test_a_chat_prompt_diff_shows_a_changed_role_and_an_added_message() -> None:
    old = chat_prompt("1", ("system", "Be kind."), ("user", "{{q}}"))
    new = chat_prompt("2", ("developer", "Be kind."), ("user", "{{q}}"), ("assistant", "Sure."))
    assert prompt_diff(new, old) == (
        "--- assistant v1\n"
        "+++ assistant v2\n"
        "@@ -1,5 +1,8 @@\n"
        "-[system]\n"
        "+[developer]\n"
        " Be kind.\n"
        " \n"
        " [user]\n"
        " {{q}}\n"
        "+\n"
        "+[assistant]\n"
        "+Sure."
    )


def test_a_chat_prompt_against_a_text_prompt_diffs_their_text() -> None:
    old = text_prompt("1", "Be kind.")
    new = chat_prompt("2", ("system", "Be kind."))
    new = new.model_copy(update={"name": "summarizer"})
    assert (
        prompt_diff(new, old) == "--- summarizer v1\n+++ summarizer v2\n@@ -1 +1,2 @@\n+[system]\n Be kind."
    )


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        ("a\nb\nc", "a\nB\nc", (1, 1)),
        ("a", "a\nb\nc", (2, 0)),
        ("a\nb\nc", "", (0, 3)),
        # Lines that read like file headers once prefixed are counted, not skipped.
        ("-- removed dashes\nkeep", "keep\n++ added pluses", (1, 1)),
        ("--- x\n+++ y\nkeep", "keep\n@@ -1 +1 @@", (1, 2)),
    ],
)
def test_diff_stats_count_added_and_removed_lines(old: str, new: str, expected: tuple[int, int]) -> None:
    assert diff_stats(prompt_diff(text_prompt("2", new), text_prompt("1", old))) == expected


def test_diff_stats_count_the_config_file_too() -> None:
    old = text_prompt("1", "A\nB", model_config_values={"temperature": "0.2"})
    new = text_prompt("2", "A\nC\nD", model_config_values={"temperature": "0.7", "top_p": "0.9"})
    assert diff_stats(prompt_diff(new, old)) == (4, 2)


def test_no_diff_no_stats() -> None:
    assert diff_stats("") == (0, 0)
