"""Unit tests for bot.votes.rules: who may vote, what a vote does, and how a review becomes tags and back."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta, timezone

import pytest

from bot.models import ReviewState, ReviewStatus, Via, Vote, VoteClick, VoteKind
from bot.tags import (
    APPROVAL_COUNT,
    CHANGE_REQUEST_COUNT,
    MODEL_VERSIONS,
    VOTE_PREFIX,
    UnreadableRecord,
    review_changes,
    vote_key,
)
from bot.tags import APPROVALS as APPROVALS_TAG
from bot.tags import CHANGE_REQUESTS as CHANGE_REQUESTS_TAG
from bot.tags import DECIDED_AT as DECIDED_AT_TAG
from bot.tags import REQUESTED_AT as REQUESTED_AT_TAG
from bot.tags import REQUESTED_BY as REQUESTED_BY_TAG
from bot.tags import SLACK_CHANNEL as SLACK_CHANNEL_TAG
from bot.tags import SLACK_PERMALINK as SLACK_PERMALINK_TAG
from bot.tags import SLACK_TS as SLACK_TS_TAG
from bot.tags import STATUS as STATUS_TAG
from bot.tags import review_from_tags as state_from_tags
from bot.tags import review_tags as tags_for
from bot.votes.rules import (
    NO_VOTE_TO_WITHDRAW,
    NOT_A_REVIEWER,
    OWN_MODEL_AUTHOR,
    OWN_MODEL_REQUESTER,
    SAME_VOTE,
    STATUS_LINES,
    Outcome,
    VotePolicy,
    apply_click,
    cast,
    decide,
    withdraw,
)

RUN_ID = "0123456789abcdef0123456789abcdef"
T0 = datetime(2024, 5, 1, 9, 0, tzinfo=UTC)
T1 = datetime(2024, 5, 1, 10, 30, tzinfo=UTC)
T2 = datetime(2024, 5, 1, 11, 45, 15, tzinfo=UTC)
T3 = datetime(2024, 5, 2, 8, 0, tzinfo=UTC)

APPROVE = VoteKind.APPROVE
CHANGES = VoteKind.REQUEST_CHANGES
PENDING = ReviewStatus.PENDING
APPROVED = ReviewStatus.APPROVED
CHANGES_REQUESTED = ReviewStatus.CHANGES_REQUESTED

NAMES = {"UANA": "Ana", "UBO": "Bo", "UCY": "Cy", "UDEE": "Dee"}
TIMES = [T0, T1, T2, T3]


def _vote(user: str, at: datetime = T1, via: Via = Via.BUTTON) -> Vote:
    return Vote(user=user, name=NAMES[user], at=at, via=via)


def _state(
    approvals: tuple[str, ...] = (),
    change_requests: tuple[str, ...] = (),
    status: ReviewStatus = PENDING,
    decided_at: datetime | None = None,
) -> ReviewState:
    return ReviewState(
        run_id=RUN_ID,
        status=status,
        approvals=[_vote(u) for u in approvals],
        change_requests=[_vote(u) for u in change_requests],
        requested_by="UREQ",
        requested_at=T0,
        decided_at=decided_at,
    )


# --- who may vote -------------------------------------------------------------------------------------------

REVIEWERS = frozenset({"UREV", "UREQ_REV", "UAUTH_REV"})
CONFIGURED = VotePolicy(reviewers=REVIEWERS, reviewers_label="@ml-reviewers")
ANYONE = VotePolicy(reviewers=None)
NOT_REVIEWER_MSG = NOT_A_REVIEWER.format(who="@ml-reviewers")
AUTHOR_MSG = OWN_MODEL_AUTHOR.format(author="ana@example.com")

# (policy, voter, role, kind, expected refusal). role says how the voter relates to the run.
POLICY_TABLE = [
    # reviewers configured: a reviewer who is not the requester/author votes either way
    (CONFIGURED, "UREV", "other", APPROVE, None),
    (CONFIGURED, "UREV", "other", CHANGES, None),
    # a reviewer who requested the review or trained the run may request changes, never approve
    (CONFIGURED, "UREQ_REV", "requester", APPROVE, OWN_MODEL_REQUESTER),
    (CONFIGURED, "UREQ_REV", "requester", CHANGES, None),
    (CONFIGURED, "UAUTH_REV", "author", APPROVE, AUTHOR_MSG),
    (CONFIGURED, "UAUTH_REV", "author", CHANGES, None),
    # a non-reviewer is refused whatever their role and vote
    (CONFIGURED, "UOUT", "other", APPROVE, NOT_REVIEWER_MSG),
    (CONFIGURED, "UOUT", "other", CHANGES, NOT_REVIEWER_MSG),
    (CONFIGURED, "UOUT", "requester", APPROVE, NOT_REVIEWER_MSG),
    (CONFIGURED, "UOUT", "requester", CHANGES, NOT_REVIEWER_MSG),
    (CONFIGURED, "UOUT", "author", APPROVE, NOT_REVIEWER_MSG),
    (CONFIGURED, "UOUT", "author", CHANGES, NOT_REVIEWER_MSG),
    # no reviewers configured: anyone but the requester and the author, for both kinds
    (ANYONE, "UOUT", "other", APPROVE, None),
    (ANYONE, "UOUT", "other", CHANGES, None),
    (ANYONE, "UOUT", "requester", APPROVE, OWN_MODEL_REQUESTER),
    (ANYONE, "UOUT", "requester", CHANGES, OWN_MODEL_REQUESTER),
    (ANYONE, "UOUT", "author", APPROVE, AUTHOR_MSG),
    (ANYONE, "UOUT", "author", CHANGES, AUTHOR_MSG),
    (ANYONE, "UOUT", "requester+author", APPROVE, OWN_MODEL_REQUESTER),
]


@pytest.mark.parametrize(("policy", "voter", "role", "kind", "expected"), POLICY_TABLE)
def test_refusal_table(
    policy: VotePolicy, voter: str, role: str, kind: VoteKind, expected: str | None
) -> None:
    requester = voter if "requester" in role else "USOMEONE_ELSE"
    refusal = policy.refusal(
        voter, kind, requester=requester, is_author="author" in role, author="ana@example.com"
    )
    assert refusal == expected


def test_refusal_without_label_points_at_the_setting() -> None:
    policy = VotePolicy(reviewers=frozenset({"UREV"}))
    refusal = policy.refusal("UOUT", APPROVE, requester="UREQ", is_author=False, author="")
    assert refusal == NOT_A_REVIEWER.format(who="see REVIEWERS")


def test_every_refusal_is_a_non_empty_message() -> None:
    refusals = [expected for *_, expected in POLICY_TABLE if expected is not None]
    assert refusals and all(isinstance(r, str) and r.strip() for r in refusals)
    assert "ana@example.com" in AUTHOR_MSG and "{" not in AUTHOR_MSG + NOT_REVIEWER_MSG


# --- decide -------------------------------------------------------------------------------------------------

DECIDE_TABLE = [
    ((), (), 1, PENDING),
    (("UANA",), (), 1, APPROVED),
    (("UANA",), (), 2, PENDING),
    (("UANA", "UBO"), (), 2, APPROVED),
    (("UANA", "UANA"), (), 2, PENDING),  # the same person twice is one reviewer
    (("UANA", "UBO"), ("UCY",), 2, CHANGES_REQUESTED),
    ((), ("UCY",), 1, CHANGES_REQUESTED),
]


@pytest.mark.parametrize(("approvals", "change_requests", "required", "expected"), DECIDE_TABLE)
def test_decide(
    approvals: tuple[str, ...], change_requests: tuple[str, ...], required: int, expected: ReviewStatus
) -> None:
    assert decide([_vote(u) for u in approvals], [_vote(u) for u in change_requests], required) is expected


# --- transitions --------------------------------------------------------------------------------------------

# A step is (action, user, kind): action "cast" or "withdraw". Each row gives the statuses after each step.
TRANSITIONS = [
    pytest.param(1, [("cast", "UANA", APPROVE)], [APPROVED], id="one-approval-enough"),
    pytest.param(
        2,
        [("cast", "UANA", APPROVE), ("cast", "UBO", APPROVE)],
        [PENDING, APPROVED],
        id="two-distinct-needed",
    ),
    pytest.param(
        2,
        [("cast", "UANA", APPROVE), ("cast", "UBO", APPROVE), ("cast", "UCY", APPROVE)],
        [PENDING, APPROVED, APPROVED],
        id="third-approval-keeps-approved",
    ),
    pytest.param(
        1,
        [("cast", "UCY", CHANGES), ("cast", "UANA", APPROVE)],
        [CHANGES_REQUESTED, CHANGES_REQUESTED],
        id="change-request-blocks-approval",
    ),
    pytest.param(
        1,
        [("cast", "UANA", APPROVE), ("cast", "UCY", CHANGES)],
        [APPROVED, CHANGES_REQUESTED],
        id="change-request-overrides-approved",
    ),
    pytest.param(
        1,
        [("cast", "UCY", CHANGES), ("cast", "UCY", APPROVE)],
        [CHANGES_REQUESTED, APPROVED],
        id="requester-of-changes-approves",
    ),
    pytest.param(
        2,
        [("cast", "UCY", CHANGES), ("cast", "UANA", APPROVE), ("cast", "UCY", APPROVE)],
        [CHANGES_REQUESTED, CHANGES_REQUESTED, APPROVED],
        id="requester-of-changes-approves-as-second",
    ),
    pytest.param(
        1,
        [("cast", "UANA", APPROVE), ("cast", "UCY", CHANGES), ("withdraw", "UCY", CHANGES)],
        [APPROVED, CHANGES_REQUESTED, APPROVED],
        id="withdraw-change-request-back-to-approved",
    ),
    pytest.param(
        2,
        [("cast", "UANA", APPROVE), ("cast", "UCY", CHANGES), ("withdraw", "UCY", CHANGES)],
        [PENDING, CHANGES_REQUESTED, PENDING],
        id="withdraw-change-request-back-to-pending",
    ),
    pytest.param(
        1,
        [("cast", "UCY", CHANGES), ("cast", "UDEE", CHANGES), ("withdraw", "UCY", CHANGES)],
        [CHANGES_REQUESTED, CHANGES_REQUESTED, CHANGES_REQUESTED],
        id="other-change-request-still-open",
    ),
    pytest.param(
        2,
        [("cast", "UANA", APPROVE), ("cast", "UBO", APPROVE), ("withdraw", "UBO", APPROVE)],
        [PENDING, APPROVED, PENDING],
        id="withdraw-approval-below-required",
    ),
]


@pytest.mark.parametrize(("required", "steps", "statuses"), TRANSITIONS)
def test_transitions(
    required: int, steps: list[tuple[str, str, VoteKind]], statuses: list[ReviewStatus]
) -> None:
    state = _state()
    seen = []
    for (action, user, kind), at in zip(steps, TIMES, strict=False):
        if action == "cast":
            outcome = cast(state, _vote(user, at), kind, required)
        else:
            outcome = withdraw(state, user, NAMES[user], kind, at, required)
        assert outcome.changed is True
        assert outcome.message is None
        state = outcome.state
        seen.append(state.status)
    assert seen == statuses


def test_transition_keeps_the_rest_of_the_state() -> None:
    before = _state().model_copy(
        update={"slack_channel": "C1", "slack_ts": "1.2", "slack_permalink": "https://x/p"}
    )
    after = cast(before, _vote("UANA", T2), APPROVE, 1).state
    assert after == before.model_copy(
        update={"approvals": [_vote("UANA", T2)], "status": APPROVED, "decided_at": T2}
    )


# --- idempotence, replacement, withdrawal -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "did"), [(APPROVE, "approved"), (CHANGES, "requested changes on")], ids=["approve", "changes"]
)
def test_same_vote_twice_changes_nothing(kind: VoteKind, did: str) -> None:
    first = cast(_state(), _vote("UANA", T1), kind, 2)
    second = cast(first.state, _vote("UANA", T2, Via.REACTION), kind, 2)
    assert second == Outcome(first.state, changed=False, message=SAME_VOTE.format(did=did))


def test_approve_then_request_changes_moves_the_user() -> None:
    state = cast(_state(approvals=("UBO",)), _vote("UANA", T1), APPROVE, 1).state
    outcome = cast(state, _vote("UANA", T2, Via.REACTION), CHANGES, 1)
    assert outcome.changed is True
    assert outcome.state.approvals == [_vote("UBO")]
    assert outcome.state.change_requests == [_vote("UANA", T2, Via.REACTION)]
    assert outcome.state.status is CHANGES_REQUESTED


def test_request_changes_then_approve_moves_the_user() -> None:
    state = cast(_state(change_requests=("UBO",)), _vote("UANA", T1), CHANGES, 1).state
    outcome = cast(state, _vote("UANA", T2), APPROVE, 1)
    assert outcome.changed is True
    assert outcome.state.approvals == [_vote("UANA", T2)]
    assert outcome.state.change_requests == [_vote("UBO")]
    assert outcome.state.status is CHANGES_REQUESTED  # Bo's request is still open


@pytest.mark.parametrize(
    ("kind", "label", "state"),
    [
        (APPROVE, "approval", _state(change_requests=("UANA",))),
        (CHANGES, "change request", _state(approvals=("UANA",), status=APPROVED, decided_at=T1)),
        (APPROVE, "approval", _state()),
    ],
    ids=["approval-while-requesting-changes", "change-request-while-approving", "nothing"],
)
def test_withdraw_without_that_vote(kind: VoteKind, label: str, state: ReviewState) -> None:
    outcome = withdraw(state, "UANA", "Ana", kind, T2, 1)
    assert outcome == Outcome(state, changed=False, message=NO_VOTE_TO_WITHDRAW.format(kind=label))


def test_withdraw_removes_only_that_user() -> None:
    state = _state(approvals=("UANA", "UBO"), status=APPROVED, decided_at=T1)
    outcome = withdraw(state, "UANA", "Ana", APPROVE, T2, 1)
    assert outcome.state.approvals == [_vote("UBO")]
    assert outcome.state.status is APPROVED
    assert outcome.state.decided_at == T1  # still approved: the decision time stays


# --- decided_at ---------------------------------------------------------------------------------------------

DECIDED_AT_TABLE = [
    pytest.param(_state(), "cast", "UANA", APPROVE, 1, T2, id="pending-to-approved-sets"),
    pytest.param(_state(), "cast", "UANA", CHANGES, 1, T2, id="pending-to-changes-sets"),
    pytest.param(_state(), "cast", "UANA", APPROVE, 2, None, id="still-pending-stays-none"),
    pytest.param(
        _state(approvals=("UBO",), status=APPROVED, decided_at=T1),
        "cast",
        "UANA",
        APPROVE,
        1,
        T1,
        id="approved-stays-approved-keeps",
    ),
    pytest.param(
        _state(approvals=("UBO",), status=APPROVED, decided_at=T1),
        "cast",
        "UANA",
        CHANGES,
        1,
        T2,
        id="approved-to-changes-moves",
    ),
    pytest.param(
        _state(approvals=("UBO",), status=APPROVED, decided_at=T1),
        "withdraw",
        "UBO",
        APPROVE,
        1,
        None,
        id="approved-to-pending-clears",
    ),
    pytest.param(
        _state(change_requests=("UANA",), status=CHANGES_REQUESTED, decided_at=T1),
        "withdraw",
        "UANA",
        CHANGES,
        1,
        None,
        id="changes-to-pending-clears",
    ),
]


@pytest.mark.parametrize(("state", "action", "user", "kind", "required", "expected"), DECIDED_AT_TABLE)
def test_decided_at(
    state: ReviewState, action: str, user: str, kind: VoteKind, required: int, expected: datetime | None
) -> None:
    if action == "cast":
        outcome = cast(state, _vote(user, T2), kind, required)
    else:
        outcome = withdraw(state, user, NAMES[user], kind, T2, required)
    assert outcome.changed is True
    assert outcome.state.decided_at == expected


# --- thread lines -------------------------------------------------------------------------------------------

LINE_TABLE = [
    pytest.param(
        _state(),
        "cast",
        "UANA",
        APPROVE,
        1,
        "Ana approved. The review is now *approved*.",
        id="approve-decides",
    ),
    pytest.param(_state(), "cast", "UANA", APPROVE, 2, "Ana approved", id="approve-no-status-change"),
    pytest.param(
        _state(),
        "cast",
        "UBO",
        CHANGES,
        1,
        "Bo requested changes. The review now has *changes requested*.",
        id="changes-decides",
    ),
    pytest.param(
        _state(change_requests=("UCY",), status=CHANGES_REQUESTED, decided_at=T1),
        "cast",
        "UBO",
        CHANGES,
        1,
        "Bo requested changes",
        id="second-change-request",
    ),
    pytest.param(
        _state(approvals=("UANA",), status=APPROVED, decided_at=T1),
        "withdraw",
        "UANA",
        APPROVE,
        1,
        "Ana withdrew their approval. The review is *pending* again.",
        id="withdraw-approval",
    ),
    pytest.param(
        _state(approvals=("UANA",), change_requests=("UBO",), status=CHANGES_REQUESTED, decided_at=T1),
        "withdraw",
        "UBO",
        CHANGES,
        1,
        "Bo withdrew their change request. The review is now *approved*.",
        id="withdraw-change-request",
    ),
]


@pytest.mark.parametrize(("state", "action", "user", "kind", "required", "expected"), LINE_TABLE)
def test_thread_lines(
    state: ReviewState, action: str, user: str, kind: VoteKind, required: int, expected: str
) -> None:
    if action == "cast":
        outcome = cast(state, _vote(user, T2), kind, required)
    else:
        outcome = withdraw(state, user, NAMES[user], kind, T2, required)
    assert outcome.line == expected


def test_status_lines_cover_every_status() -> None:
    assert set(STATUS_LINES) == set(ReviewStatus)


def test_no_line_when_nothing_changed() -> None:
    state = _state(approvals=("UANA",), status=APPROVED, decided_at=T1)
    assert cast(state, _vote("UANA", T2), APPROVE, 1).line is None
    assert withdraw(state, "UBO", "Bo", CHANGES, T2, 1).line is None


# --- tags ---------------------------------------------------------------------------------------------------


def _clicked(state: ReviewState) -> ReviewState:
    """The state with each voter's last click on record (what tags carry for every vote)."""
    votes = [*state.approvals, *state.change_requests]
    return state.model_copy(update={"last_click": {v.user: v.at for v in votes} | state.last_click})


FULL_STATE = _clicked(
    ReviewState(
        run_id=RUN_ID,
        status=CHANGES_REQUESTED,
        approvals=[_vote("UANA", T1), _vote("UBO", T2, Via.REACTION)],
        change_requests=[_vote("UCY", T3)],
        requested_by="UREQ",
        requested_at=T0,
        decided_at=T3,
        slack_channel="C0123",
        slack_ts="1714554000.000100",
        slack_permalink="https://example.slack.com/archives/C0123/p1714554000000100",
        covers=["fraud-clf/3", "fraud-clf/4"],
        last_click={"UDEE": T2},  # Dee withdrew: no vote, a click on record
    )
)

ROUND_TRIP = [
    pytest.param(FULL_STATE, id="full"),
    pytest.param(ReviewState(run_id=RUN_ID), id="empty"),
    pytest.param(_clicked(_state(approvals=("UANA",), status=APPROVED, decided_at=T2)), id="approved"),
    pytest.param(
        _clicked(
            ReviewState(
                run_id=RUN_ID,
                approvals=[Vote(user="UX", name='Zoë "Z" <O\'Neil>', at=T1, via=Via.BUTTON)],
                requested_at=datetime(2024, 5, 1, 9, 0, 0, 123456, tzinfo=UTC),
            )
        ),
        id="odd-name-and-microseconds",
    ),
]


@pytest.mark.parametrize("state", ROUND_TRIP)
def test_tags_round_trip(state: ReviewState) -> None:
    assert state_from_tags(RUN_ID, tags_for(state)) == state


def test_tags_for_values() -> None:
    def vote(kind: str, name: str, at: str, via: str) -> str:
        body = {"at": at, "kind": kind, "name": name, "seen": at, "via": via}
        return json.dumps(body, separators=(",", ":"), sort_keys=True)

    assert tags_for(FULL_STATE) == {
        STATUS_TAG: "changes_requested",
        vote_key("UANA"): vote("approve", "Ana", "2024-05-01T10:30:00Z", "button"),
        vote_key("UBO"): vote("approve", "Bo", "2024-05-01T11:45:15Z", "reaction"),
        vote_key("UCY"): vote("request_changes", "Cy", "2024-05-02T08:00:00Z", "button"),
        vote_key("UDEE"): '{"kind":"","seen":"2024-05-01T11:45:15Z"}',
        APPROVAL_COUNT: "2",
        CHANGE_REQUEST_COUNT: "1",
        MODEL_VERSIONS: '["fraud-clf/3","fraud-clf/4"]',
        REQUESTED_BY_TAG: "UREQ",
        REQUESTED_AT_TAG: "2024-05-01T09:00:00Z",
        DECIDED_AT_TAG: "2024-05-02T08:00:00Z",
        SLACK_CHANNEL_TAG: "C0123",
        SLACK_TS_TAG: "1714554000.000100",
        SLACK_PERMALINK_TAG: "https://example.slack.com/archives/C0123/p1714554000000100",
    }


def test_a_thousand_voters_never_make_a_tag_longer_than_mlflow_keeps() -> None:
    voters = [Vote(user=f"U{i:08d}", name="N" * 500, at=T1, via=Via.BUTTON) for i in range(1000)]
    state = _clicked(ReviewState(run_id=RUN_ID, status=APPROVED, approvals=voters, decided_at=T1))
    written = tags_for(state)
    assert max(len(v) for v in written.values()) < 8000  # MLflow cuts run tag values at 8,000 silently
    assert max(len(k) for k in written) <= 250
    back = state_from_tags(RUN_ID, written)
    assert back is not None and len(back.approvals) == 1000 and back.status is APPROVED


ISO_UTC = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z$")


@pytest.mark.parametrize("state", ROUND_TRIP)
def test_tag_values_are_strings_and_timestamps_iso_utc(state: ReviewState) -> None:
    tags = tags_for(state)
    assert all(isinstance(k, str) and isinstance(v, str) for k, v in tags.items())
    stamps = [tags[REQUESTED_AT_TAG], tags[DECIDED_AT_TAG]]
    for stamp, moment in zip(stamps, [state.requested_at, state.decided_at], strict=True):
        assert (stamp == "") is (moment is None)
    stamps += [
        json.loads(v).get(k, "")
        for key, v in tags.items()
        if key.startswith(VOTE_PREFIX)
        for k in ("at", "seen")
    ]
    assert [s for s in stamps if s and not ISO_UTC.match(s)] == []


@pytest.mark.parametrize(
    ("moment", "expected"),
    [
        (datetime(2024, 5, 1, 11, 0, tzinfo=timezone(timedelta(hours=2))), "2024-05-01T09:00:00Z"),
        (datetime(2024, 5, 1, 9, 0), "2024-05-01T09:00:00Z"),  # naive: taken as UTC
    ],
    ids=["other-offset", "naive"],
)
def test_timestamps_written_in_utc(moment: datetime, expected: str) -> None:
    state = ReviewState(
        run_id=RUN_ID, requested_at=moment, approvals=[Vote(user="U1", name="U", at=moment, via=Via.BUTTON)]
    )
    tags = tags_for(state)
    assert tags[REQUESTED_AT_TAG] == expected
    assert json.loads(tags[vote_key("U1")])["at"] == expected


def test_state_from_tags_without_status_is_none() -> None:
    assert state_from_tags(RUN_ID, {}) is None
    assert state_from_tags(RUN_ID, {REQUESTED_BY_TAG: "UREQ", vote_key("UANA"): ""}) is None


def test_state_from_tags_with_only_status() -> None:
    assert state_from_tags(RUN_ID, {STATUS_TAG: "approved"}) == ReviewState(run_id=RUN_ID, status=APPROVED)


def test_state_from_tags_unknown_status_reads_as_pending() -> None:
    assert state_from_tags(RUN_ID, {STATUS_TAG: "lgtm"}) == ReviewState(run_id=RUN_ID, status=PENDING)


def test_an_untrusted_record_reads_as_pending_with_no_votes_and_says_why() -> None:
    state = state_from_tags(RUN_ID, tags_for(FULL_STATE), untrusted="not signed")
    assert state == ReviewState(
        run_id=RUN_ID,
        requested_by="UREQ",
        requested_at=T0,
        slack_channel="C0123",
        slack_ts="1714554000.000100",
        slack_permalink=FULL_STATE.slack_permalink,
        untrusted="not signed",
    )


@pytest.mark.parametrize(
    "broken",
    [
        "{",
        "not json",
        "null",
        "{}",
        '{"kind": "approve"}',
        '{"kind": "lgtm", "at": "2024-05-01T10:30:00Z"}',
        "5",
    ],
)
def test_a_vote_tag_the_bot_cannot_read_is_an_error_never_no_vote(broken: str) -> None:
    tags = {**tags_for(FULL_STATE), vote_key("UBO"): broken}
    with pytest.raises(UnreadableRecord) as raised:
        state_from_tags(RUN_ID, tags)
    assert raised.value.key == vote_key("UBO")
    assert (
        vote_key("UBO") in raised.value.user_message()
        and "Nothing was changed" in raised.value.user_message()
    )


def test_a_vote_tag_that_names_no_slack_user_is_unreadable() -> None:
    tags = {STATUS_TAG: "approved", vote_key("<!channel>"): tags_for(FULL_STATE)[vote_key("UANA")]}
    with pytest.raises(UnreadableRecord):
        state_from_tags(RUN_ID, tags)


def test_an_empty_vote_tag_is_no_vote() -> None:
    """What the bot writes over a vote it removes (MLflow cannot delete tags in a batch)."""
    state = state_from_tags(RUN_ID, {**tags_for(FULL_STATE), vote_key("UBO"): ""})
    assert (
        state is not None and [v.user for v in state.approvals] == ["UANA"] and "UBO" not in state.last_click
    )


def test_review_changes_writes_only_what_differs_and_blanks_votes_the_state_drops() -> None:
    current = {**tags_for(FULL_STATE), vote_key("UEVE"): tags_for(FULL_STATE)[vote_key("UANA")]}
    assert review_changes(current, FULL_STATE) == {vote_key("UEVE"): ""}
    assert review_changes(tags_for(FULL_STATE), FULL_STATE) == {}


# --- the record before per-voter tags (read only) -------------------------------------------------


def test_a_legacy_record_reads_its_vote_lists() -> None:
    good = {"user": "UANA", "name": "Ana", "at": "2024-05-01T10:30:00Z", "via": "button"}
    state = state_from_tags(RUN_ID, {STATUS_TAG: "pending", APPROVALS_TAG: json.dumps([good])})
    assert state is not None and state.approvals == [_vote("UANA", T1)]


@pytest.mark.parametrize("broken", ["[{", "not json", "null", "{}", '[{"user": "UANA"}]', "5"])
def test_a_legacy_list_cut_short_is_an_error_never_an_empty_list(broken: str) -> None:
    """What MLflow left of `review.approvals` past 8,000 characters: reported, never rewritten as []."""
    with pytest.raises(UnreadableRecord) as raised:
        state_from_tags(RUN_ID, {STATUS_TAG: "approved", APPROVALS_TAG: broken})
    assert raised.value.key == APPROVALS_TAG


def test_legacy_lists_are_ignored_once_per_voter_tags_exist() -> None:
    tags = {**tags_for(FULL_STATE), APPROVALS_TAG: "[{", CHANGE_REQUESTS_TAG: "[]"}
    assert state_from_tags(RUN_ID, tags) == FULL_STATE


# --- clicks in Slack's order --------------------------------------------------------------------------


def _click(user: str, kind: VoteKind, at: datetime, *, withdrawing: bool = False) -> VoteClick:
    return VoteClick(
        delivery=f"{user}-{at.timestamp()}",
        channel="C1",
        ts="1.1",
        user=user,
        kind=kind,
        via=Via.BUTTON,
        at=at,
        withdrawing=withdrawing,
    )


ORDERS = [
    pytest.param([0, 1, 2], id="in-order"),
    pytest.param([2, 1, 0], id="reversed"),
    pytest.param([0, 2, 1], id="last-click-early"),
    pytest.param([1, 2, 0], id="first-click-late"),
]


@pytest.mark.parametrize("order", ORDERS)
def test_the_last_click_wins_in_whatever_order_clicks_arrive(order: list[int]) -> None:
    """Approve -> Request changes -> Approve: approved, however the three reach the bot."""
    clicks = [_click("UBO", APPROVE, T1), _click("UBO", CHANGES, T2), _click("UBO", APPROVE, T3)]
    state = ReviewState(run_id=RUN_ID)
    for i in order:
        state = apply_click(state, clicks[i], "Bo", 1).state
    assert state.status is APPROVED and state.change_requests == []
    assert [v.user for v in state.approvals] == ["UBO"] and state.last_click == {"UBO": T3}


@pytest.mark.parametrize("order", ORDERS)
def test_a_reaction_added_then_removed_ends_with_no_vote_in_any_order(order: list[int]) -> None:
    clicks = [
        _click("UBO", APPROVE, T1),
        _click("UBO", APPROVE, T2, withdrawing=True),
        _click("UBO", APPROVE, T0, withdrawing=True),  # removing before adding: nothing to withdraw
    ]
    state = ReviewState(run_id=RUN_ID)
    for i in order:
        state = apply_click(state, clicks[i], "Bo", 1).state
    assert state.approvals == [] and state.status is PENDING and state.last_click == {"UBO": T2}


def test_a_stale_click_changes_nothing_and_says_nothing() -> None:
    state = apply_click(ReviewState(run_id=RUN_ID), _click("UBO", APPROVE, T2), "Bo", 1).state
    outcome = apply_click(state, _click("UBO", CHANGES, T1), "Bo", 1)
    assert outcome == Outcome(state, changed=False, stale=True)
