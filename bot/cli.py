"""`review-bot`: serve (HTTP), socket (Socket Mode), preview, demo, gate, keys, nudge, webhook register.

The commands get the services and the Slack app from the composition root (`app.py`) as a `Wiring`,
so this module never imports the Slack handlers.
"""

from __future__ import annotations

import argparse
import json
import logging
import re
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from bot.config import MissingSettingError, Settings

if TYPE_CHECKING:
    from slack_bolt import App

    from bot.mlflow import MlflowAccess
    from bot.reviews.prepare import ReviewPreparer
    from bot.services import Services

log = logging.getLogger("review-bot")

EXIT_CONFIG = 2
DEMO_DIR = Path("demo")
PREVIEW_DIR = Path("preview")
DEMO_KEY_METRICS = ("val_auc", "val_f1", "val_recall", "val_precision", "val_loss")


@dataclass(frozen=True)
class Wiring:
    """What the commands build, made by the composition root."""

    build_services: Callable[[Settings], Services]
    create_app: Callable[..., App]  # (settings, services, *, socket_mode=False)
    create_mlflow: Callable[[Settings], MlflowAccess]
    create_preparer: Callable[[Settings, MlflowAccess], ReviewPreparer]
    create_webhook_app: Callable[[Services], Callable[..., Any]]
    asgi_factory: str = "app:create_asgi"  # "module:function" each serving process calls (uvicorn)


def load_settings(**overrides: object) -> Settings:
    """Settings, or one line naming the bad variable and exit 2 (no traceback)."""
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        first = exc.errors()[0]
        variable = str(first["loc"][0]).upper() if first["loc"] else "settings"
        _die(f"{variable}: {first['msg']}")


def _die(message: str) -> None:
    print(f"review-bot: {message}", file=sys.stderr)
    raise SystemExit(EXIT_CONFIG)


def _secrets(settings: Settings) -> list[str]:
    from bot.logs import url_secrets

    return (
        [
            s.get_secret_value()
            for s in (
                settings.slack_bot_token,
                settings.slack_signing_secret,
                settings.slack_app_token,
                settings.mlflow_webhook_secret,
                settings.review_signing_key,
            )
            if s is not None
        ]
        + url_secrets(settings.mlflow_tracking_uri)
        + url_secrets(settings.redis_url)
    )


def _checked_settings(*, socket_mode: bool) -> Settings:
    """Settings, with logging configured; exit 2 naming what is missing for this mode."""
    from bot.logs import configure_logging

    settings = load_settings()
    require = settings.require_socket_mode if socket_mode else settings.require_slack_http
    try:
        require()
        settings.require_signing_key()
    except MissingSettingError as exc:
        _die(str(exc))
    configure_logging(settings.log_level, _secrets(settings), settings.log_format)
    return settings


def _start(wiring: Wiring, *, socket_mode: bool) -> tuple[Settings, Services, App]:
    """Settings (exit 2 naming what is missing for this mode), logging, the services and the app."""
    settings = _checked_settings(socket_mode=socket_mode)
    services = wiring.build_services(settings)
    app = wiring.create_app(settings, services, socket_mode=socket_mode)
    _warn_about_nudges(settings)
    mlflow_state = services.health().get("mlflow", "ok")
    if mlflow_state != "ok":  # one line now, rather than a surprise at the first /review
        log.warning(
            "MLflow at %s: %s (GET /healthz shows it too)",
            settings.ui_url or "the tracking URI",
            mlflow_state,
        )
    return settings, services, app


def cmd_serve(args: argparse.Namespace, wiring: Wiring) -> None:
    from bot.server import serve

    settings = _checked_settings(socket_mode=False)
    log.info("serving on port %s (POST /slack/events, POST /mlflow/webhook, GET /healthz)", settings.port)
    # Each worker process builds its own services and app from the settings (wiring.asgi_factory).
    serve(wiring.asgi_factory, settings.port, settings.web_concurrency, settings.log_level)


def create_asgi(wiring: Wiring) -> Any:
    """What each serving process runs: settings, logging, services and the app, behind bot.server's
    front (bodies bounded, background work started and stopped with the process)."""
    from bot.server import Front
    from bot.web import create_wsgi_app

    settings, services, app = _start(wiring, socket_mode=False)
    assert settings.slack_signing_secret is not None  # required for serve (checked above)
    wsgi = create_wsgi_app(
        app,
        services.health,
        wiring.create_webhook_app(services),
        settings.slack_signing_secret.get_secret_value(),
    )
    return Front(wsgi, settings.worker_threads, on_start=services.start, on_stop=services.stop)


def _warn_about_nudges(settings: Settings) -> None:
    if not settings.review_channel:
        log.warning(
            "REVIEW_CHANNEL is not set: nudges about unreviewed deployments and the digest are not posted"
        )
    if settings.mlflow_webhook_secret is None:
        log.warning("MLFLOW_WEBHOOK_SECRET is not set: POST /mlflow/webhook refuses every delivery")


def cmd_socket(args: argparse.Namespace, wiring: Wiring) -> None:
    from wsgiref.simple_server import WSGIRequestHandler, make_server

    from slack_bolt.adapter.socket_mode import SocketModeHandler

    from bot.web import create_health_app

    settings, services, app = _start(wiring, socket_mode=True)

    class QuietHandler(WSGIRequestHandler):
        def log_message(self, format: str, *args: object) -> None:  # noqa: A002
            pass

    health = make_server(
        "0.0.0.0",
        settings.port,
        create_health_app(services.health, wiring.create_webhook_app(services)),
        handler_class=QuietHandler,
    )
    threading.Thread(target=health.serve_forever, name="healthz", daemon=True).start()
    log.info("Socket Mode: connecting to Slack; GET /healthz, POST /mlflow/webhook on port %s", settings.port)
    assert settings.slack_app_token is not None
    services.start()
    SocketModeHandler(app, settings.slack_app_token.get_secret_value()).start()


def cmd_preview(args: argparse.Namespace, wiring: Wiring) -> None:
    from bot.commands import parse_ref
    from bot.demo.preview import write_preview
    from bot.errors import ReviewBotError
    from bot.logs import configure_logging

    settings = load_settings(**({"mlflow_tracking_uri": args.tracking_uri} if args.tracking_uri else {}))
    configure_logging(settings.log_level, _secrets(settings), settings.log_format)
    try:
        ref = parse_ref(args.run)
        baseline = parse_ref(args.baseline) if args.baseline else None
        preparer = wiring.create_preparer(settings, wiring.create_mlflow(settings))
        result = write_preview(preparer, ref, Path(args.out), baseline=baseline)
    except ReviewBotError as exc:
        print(f"review-bot: {exc.user_message()}", file=sys.stderr)
        raise SystemExit(1) from None
    print(f"Preview of {args.run} written to {result.out}/")
    print(f"  card:   {result.card}")
    print(f"  thread: {result.thread}")
    for image in result.images:
        print(f"  image:  {image}")


def cmd_demo(args: argparse.Namespace, wiring: Wiring) -> None:
    from bot.commands import parse_ref
    from bot.demo.preview import write_nudge_preview, write_preview
    from bot.demo.store import CHAMPION_ALIAS, build_demo_store
    from bot.logs import configure_logging

    configure_logging("WARNING", [])
    out_dir = Path(args.dir).resolve()
    out_dir.mkdir(parents=True, exist_ok=True)
    tracking_uri = f"sqlite:///{out_dir / 'mlflow.db'}"
    print(f"Building a demo MLflow store in {out_dir}/ (scikit-learn models on built-in data sets)…")
    store = build_demo_store(tracking_uri, str(out_dir / "artifacts"))
    settings = load_settings(mlflow_tracking_uri=tracking_uri, mlflow_ui_url=args.ui_url)
    if not settings.review_key_metrics:  # what a team would put first for this classifier
        settings = settings.model_copy(update={"review_key_metrics": list(DEMO_KEY_METRICS)})
    mlflow = wiring.create_mlflow(settings)
    preparer = wiring.create_preparer(settings, mlflow)
    result = write_preview(preparer, parse_ref(store.review_run_id), Path(args.out))
    print(f"Preview of the review of run {store.review_run_id} written to {result.out}/:")
    print(f"  {result.card}     the review card (a chat.postMessage payload)")
    print(f"  {result.thread}   the thread under it")
    for image in result.images:
        print(f"  {image}")
    nudge = write_nudge_preview(
        mlflow.registry,
        store.model_name,
        store.champion_version,
        settings.deployment_aliases,
        Path(args.out),
    )
    if nudge is not None:
        print(f"  {nudge}     the nudge: @{CHAMPION_ALIAS} is deployed without an approved review")
    for written in _write_surface_previews(wiring, settings, store, Path(args.out)):
        print(f"  {written}")
    if store.mlflow3 is not None:  # MLflow 3: a LoggedModel logged outside any run, and a prompt
        for ref, sub in (
            (f"models:/{store.mlflow3.agent_model_id}", "logged-model"),
            (f"prompts:/{store.mlflow3.prompt_name}/{store.mlflow3.prompt_version}", "prompt"),
        ):
            shown = write_preview(preparer, parse_ref(ref), Path(args.out) / sub)
            print(f"  {shown.card}   the review card of {ref} (thread: {shown.thread.name})")
    print(f"Browse the store: mlflow ui --backend-store-uri {tracking_uri}")
    print(
        f"Preview another: review-bot preview models:/{store.model_name}@champion --out preview-champion "
        f"(with MLFLOW_TRACKING_URI={tracking_uri})"
    )


def _write_surface_previews(wiring: Wiring, settings: Settings, store: Any, out: Path) -> list[str]:
    """What the candidate run's link unfurls into (chat.unfurl) and the Home tab of the person who asked
    for the preview (views.publish), as payloads: no Slack is called."""
    from bot.demo.preview import PREVIEW_USER
    from bot.home.blocks import build_home
    from bot.mlflow.urls import run_url

    logging.getLogger("bot.store").setLevel(logging.ERROR)  # "no REDIS_URL": a preview needs none
    services = wiring.build_services(settings)
    written = []
    link = run_url(settings.ui_url, store.experiment_id, store.review_run_id)
    unfurl = services.unfurls.preview(link) if link else None
    if unfurl is not None:
        path = out / "unfurl.json"
        path.write_text(json.dumps({"method": "chat.unfurl", "unfurls": {link: unfurl}}, indent=2))
        written.append(f"{path}     the unfurl of the candidate run's MLflow link")
    home = build_home(services.home.view(PREVIEW_USER))
    path = out / "home.json"
    path.write_text(json.dumps({"method": "views.publish", "user_id": PREVIEW_USER, "view": home}, indent=2))
    written.append(f"{path}       the Home tab of the person who asked for the preview")
    return written


def cmd_gate(args: argparse.Namespace, wiring: Wiring) -> None:
    """A deployment gate: 0 approved, 1 not (with the reason), 2 could not tell."""
    from bot.commands import parse_ref
    from bot.errors import ReviewBotError
    from bot.models import MODEL_VERSION_REFS
    from bot.votes.gate import gate_verdict

    settings = load_settings(**({"mlflow_tracking_uri": args.tracking_uri} if args.tracking_uri else {}))
    logging.basicConfig(level=logging.ERROR)
    if not settings.verifier().has_keys:
        print(
            "review-bot gate: REVIEW_PUBLIC_KEYS is not set: without the bot's public key no decision can "
            "be checked (the bot's operator has it; `review-bot keys generate` made it)",
            file=sys.stderr,
        )
        raise SystemExit(EXIT_CONFIG)
    try:
        mlflow = wiring.create_mlflow(settings)
        ref = parse_ref(args.ref)
        subject = mlflow.runs.resolve(ref)
        version = mlflow.registry.version_of(ref) if ref.kind in MODEL_VERSION_REFS else None
        standing = mlflow.records.standing(subject)
        verdict = gate_verdict(subject, standing.review, version, deleted=standing.deleted)
    except ReviewBotError as exc:
        print(f"review-bot gate: {_plain(exc.user_message())}", file=sys.stderr)
        raise SystemExit(EXIT_CONFIG) from None
    print(verdict.reason)
    raise SystemExit(0 if verdict.approved else 1)


def cmd_keys_generate(args: argparse.Namespace, wiring: Wiring) -> None:
    """A new Ed25519 pair: the private key for the bot only, the public one for the bot and pipelines."""
    from bot.signature import generate

    pair = generate()
    print("# The bot's secret: set it where the bot runs (a Kubernetes Secret, not a ConfigMap).")
    print(f"REVIEW_SIGNING_KEY={pair.private}")
    print("# Public: set it for the bot and for every pipeline that runs `review-bot gate`.")
    print("# When rotating, list the old public key too (comma-separated) until old decisions are re-signed.")
    print(f"REVIEW_PUBLIC_KEYS={pair.public}")


def cmd_nudge(args: argparse.Namespace, wiring: Wiring) -> None:
    """The digest's scan, now: printed, and posted unless --dry-run (for teams with their own cron)."""
    from datetime import UTC, datetime

    from bot.nudges.blocks import build_digest, build_reviewer_dm

    settings = load_settings(**({"mlflow_tracking_uri": args.tracking_uri} if args.tracking_uri else {}))
    if not args.once:
        _die("nudge: pass --once (the bot itself runs the digest on NUDGE_CRON)")
    if not settings.verifier().has_keys:  # without a key every approval reads as unsigned: all nudged
        _die("nudge: set REVIEW_PUBLIC_KEYS (or REVIEW_SIGNING_KEY) so signed approvals count as approved")
    posting = not args.dry_run
    if posting and (settings.slack_bot_token is None or not settings.review_channel):
        _die("nudge: SLACK_BOT_TOKEN and REVIEW_CHANNEL are needed to post; add --dry-run to only print")
    logging.basicConfig(level=logging.ERROR)
    nudges = wiring.build_services(settings).nudges  # its scheduler is never started: this is a one-off
    now = datetime.now(tz=UTC)
    scan = nudges.scan(now)
    digest = build_digest(scan, now, settings.pending_max_age_days)
    print(
        _plain_message(digest.blocks) if digest else "Nothing to report: every deployed version is approved."
    )
    for user, reviews in sorted(scan.waiting_on.items()):
        print(f"\nDM to {user}:\n{_plain_message(build_reviewer_dm(reviews, now).blocks)}")
    if posting:
        nudges.post_digest(scan, now)
        print(f"\nPosted to {settings.review_channel}.")
    raise SystemExit(1 if scan.registry_error or scan.unchecked else 0)


def cmd_webhook(args: argparse.Namespace, wiring: Wiring) -> None:
    """Create or update the MLflow webhook that tells the bot when an alias lands on a version."""
    from bot.errors import ReviewBotError
    from bot.nudges.rules import WEBHOOK_EVENTS

    settings = load_settings(**({"mlflow_tracking_uri": args.tracking_uri} if args.tracking_uri else {}))
    if settings.mlflow_webhook_secret is None:
        _die("MLFLOW_WEBHOOK_SECRET is not set: the same secret must be given to MLflow and to the bot")
    logging.basicConfig(level=logging.ERROR)
    try:
        webhook_id, created = wiring.create_mlflow(settings).registry.register_webhook(
            args.name, args.url, WEBHOOK_EVENTS, settings.mlflow_webhook_secret.get_secret_value()
        )
    except ReviewBotError as exc:
        print(f"review-bot webhook: {_plain(exc.user_message())}", file=sys.stderr)
        raise SystemExit(EXIT_CONFIG) from None
    print(
        f"{'Created' if created else 'Updated'} MLflow webhook {args.name!r} ({webhook_id}): "
        f"{', '.join(WEBHOOK_EVENTS)} -> {args.url}"
    )


def cmd_manifest(args: argparse.Namespace, wiring: Wiring) -> None:
    """manifest.yml for this deployment: the MLflow UI's domain in `unfurl_domains` (Slack unfurls only
    the domains listed there) and, with --bot-url, every request URL pointed at the bot."""
    import yaml  # PyYAML comes with mlflow-skinny

    from bot.unfurls.rules import domain_problem, manifest_for, unfurl_domain

    settings = load_settings()
    path = Path(args.file)
    try:
        manifest = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as exc:
        _die(f"manifest: cannot read {path} ({exc}); pass --file with the repository's manifest.yml")
    if not isinstance(manifest, dict):
        _die(f"manifest: {path} is not a Slack app manifest")
    try:
        result = manifest_for(manifest, settings.ui_url, args.bot_url)
    except ValueError as exc:
        _die(f"manifest: {exc}")
    problem = domain_problem(unfurl_domain(settings.ui_url))
    if problem:
        print(f"review-bot manifest: warning: {problem}", file=sys.stderr)
    print(f"# Slack app manifest for review-bot, made by `review-bot manifest` from {path}")
    print(yaml.safe_dump(result, sort_keys=False, allow_unicode=True, width=110), end="")


def _plain_message(blocks: list[dict]) -> str:
    """A message's blocks as terminal text: `<url|label>` becomes `label (url)`."""
    texts = []
    for block in blocks:
        parts = [block.get("text") or {}] + list(block.get("elements") or [])
        texts += [
            p.get("text", "")
            for p in parts
            if isinstance(p, dict) and p.get("type") in {"mrkdwn", "plain_text"}
        ]
    text = "\n".join(t for t in texts if t)
    text = re.sub(r"<(https?://[^|>]+)\|([^>]+)>", r"\2 (\1)", text)
    text = re.sub(r"<!date\^\d+\^[^|>]*\|([^>]+)>", r"\1", text)
    return _plain(text)


def _plain(text: str) -> str:
    """Slack-formatted text for a terminal: no emoji codes, no mrkdwn escapes."""
    text = re.sub(r"^:[a-z_]+: ", "", text)
    return text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="review-bot", description="Model reviews for MLflow runs, in Slack."
    )
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser(
        "serve", help="serve Slack's HTTP requests on $PORT (POST /slack/events, GET /healthz)"
    ).set_defaults(func=cmd_serve)
    sub.add_parser("socket", help="connect to Slack over Socket Mode (needs SLACK_APP_TOKEN)").set_defaults(
        func=cmd_socket
    )
    preview = sub.add_parser("preview", help="write the card and thread for a run to a folder, without Slack")
    preview.add_argument("run", help="run id, MLflow run URL, runs:/ or models:/ URI")
    preview.add_argument("--out", default=str(PREVIEW_DIR), help="output folder (default: ./preview)")
    preview.add_argument("--tracking-uri", help="overrides MLFLOW_TRACKING_URI")
    preview.add_argument("--baseline", help="the run to compare with (default: chosen as for /review)")
    preview.set_defaults(func=cmd_preview)
    demo = sub.add_parser("demo", help="build a local demo MLflow store and preview one review")
    demo.add_argument("--dir", default=str(DEMO_DIR), help="where the demo store goes (default: ./demo)")
    demo.add_argument("--out", default=str(PREVIEW_DIR), help="preview folder (default: ./preview)")
    demo.add_argument("--ui-url", default="http://localhost:5000", help="MLflow UI address used in links")
    demo.set_defaults(func=cmd_demo)
    gate = sub.add_parser(
        "gate", help="exit 0 if the run behind REF is approved, 1 if not (with the reason), 2 on errors"
    )
    gate.add_argument(
        "ref",
        help="run id, runs:/ URI, models:/name/version, models:/name@alias, models:/m-<id>, "
        "prompts:/name/version or prompts:/name@alias",
    )
    gate.add_argument("--tracking-uri", help="overrides MLFLOW_TRACKING_URI")
    gate.set_defaults(func=cmd_gate)
    nudge = sub.add_parser(
        "nudge", help="scan the registry for deployed versions without an approved review, print the digest"
    )
    nudge.add_argument("--once", action="store_true", help="scan now, once (required)")
    nudge.add_argument("--dry-run", action="store_true", help="only print; post nothing to Slack")
    nudge.add_argument("--tracking-uri", help="overrides MLFLOW_TRACKING_URI")
    nudge.set_defaults(func=cmd_nudge)
    keys = sub.add_parser("keys", help="the key pair the bot signs decisions with")
    keys_sub = keys.add_subparsers(dest="keys_command", required=True)
    generate = keys_sub.add_parser("generate", help="print a new key pair as the two settings to set")
    generate.set_defaults(func=cmd_keys_generate)
    webhook = sub.add_parser("webhook", help="manage the MLflow registry webhook that feeds the nudges")
    webhook_sub = webhook.add_subparsers(dest="webhook_command", required=True)
    register = webhook_sub.add_parser("register", help="create or update the MLflow webhook")
    register.add_argument("--url", required=True, help="the public URL of the bot's /mlflow/webhook")
    register.add_argument(
        "--name", default="review-bot", help="the webhook's name in MLflow (default: review-bot)"
    )
    register.add_argument("--tracking-uri", help="overrides MLFLOW_TRACKING_URI")
    register.set_defaults(func=cmd_webhook)
    manifest = sub.add_parser(
        "manifest", help="print manifest.yml with unfurl_domains set to MLFLOW_UI_URL's domain"
    )
    manifest.add_argument("--bot-url", help="the bot's public address: every request URL points at it")
    manifest.add_argument("--file", default="manifest.yml", help="the manifest to start from (manifest.yml)")
    manifest.set_defaults(func=cmd_manifest)
    return parser


def main(argv: list[str] | None, wiring: Wiring) -> None:
    args = build_parser().parse_args(argv)
    args.func(args, wiring)
