"""Slack's Block Kit and message limits (https://docs.slack.dev/reference/block-kit/blocks)."""

MAX_BLOCKS = 50
SECTION_TEXT = 3000
SECTION_FIELDS = 10
FIELD_TEXT = 2000
HEADER_TEXT = 150
BUTTON_TEXT = 75
BUTTON_VALUE = 2000
MESSAGE_TEXT = 40000

# What the builders aim for: a little under each limit, so a suffix always fits.
SECTION_BUDGET = SECTION_TEXT - 100
