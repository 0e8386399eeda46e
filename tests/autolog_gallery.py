"""The autolog gallery: every run of tests/autolog_runs.py as the bot would post it, to look at.

    .venv/bin/python -m tests.autolog_gallery OUTDIR [--tracking-uri URI]

With a tracking URI (a running `mlflow server`), the runs are logged there; without one, into a local
sqlite store in OUTDIR/mlflow.db. Each run's review is then prepared by the bot's own ReviewPreparer
(what `review-bot preview` runs, built by app.create_preparer) and written to OUTDIR/<library>/<run>/:
card.json and thread.json (the Slack payloads), card.txt (the card's text, as a reader sees it) and the
thread's PNGs. A pair of COMPARISONS is reviewed with the other run as its `--baseline`. OUTDIR/index.md
lists everything, with the time each preparation took.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
from pathlib import Path
from typing import Any

import app
from bot.commands import parse_ref
from bot.config import Settings
from bot.demo.preview import write_preview
from tests.autolog_runs import COMPARISONS, LIGHTNING_KEY_METRICS, AutologRuns, log_autolog_runs


def card_text(card: dict[str, Any]) -> str:
    """The readable text of a card's blocks, one block per paragraph."""
    parts: list[str] = []
    for block in card.get("blocks") or []:
        texts: list[str] = []
        if isinstance(block.get("text"), dict):
            texts.append(block["text"].get("text", ""))
        texts += [f.get("text", "") for f in block.get("fields") or []]
        texts += [e.get("text", "") for e in block.get("elements") or [] if isinstance(e.get("text"), str)]
        texts += [
            e["text"].get("text", "")
            for e in block.get("elements") or []
            if isinstance(e.get("text"), dict) and block.get("type") != "actions"
        ]
        if texts:
            parts.append("\n".join(t for t in texts if t))
    return "\n\n".join(parts) + "\n"


def _folder_name(label: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", label.split("/", 1)[1])


def render_gallery(runs: AutologRuns, out: Path) -> list[str]:
    """Write every run's preview under `out`; returns the lines of index.md."""
    settings = Settings(mlflow_tracking_uri=runs.tracking_uri, review_key_metrics=list(LIGHTNING_KEY_METRICS))
    preparer = app.create_preparer(settings, app.create_mlflow(settings))
    baselines = dict(COMPARISONS)
    lines = [
        "# Autolog gallery",
        "",
        f"Tracking URI: `{runs.tracking_uri}`; REVIEW_KEY_METRICS={','.join(LIGHTNING_KEY_METRICS)}.",
        f"Logging took (s): {json.dumps(runs.seconds)}",
        "",
    ]
    for library in sorted({run.library for run in runs.runs.values()}):
        lines.append(f"## {library}")
        for run in sorted(runs.of(library), key=lambda r: r.label):
            folder = out / library / _folder_name(run.label)
            baseline_label = baselines.get(run.label)
            baseline = parse_ref(runs.id(baseline_label)) if baseline_label else None
            started = time.monotonic()
            try:
                result = write_preview(preparer, parse_ref(run.run_id), folder, baseline=baseline)
            except Exception as exc:  # a gallery shows what failed and goes on with the next run
                lines.append(f"- `{run.label}` ({run.run_name}): FAILED {type(exc).__name__}: {exc}")
                continue
            seconds = time.monotonic() - started
            card = json.loads(result.card.read_text())
            (folder / "card.txt").write_text(card_text(card))
            against = f", vs `{baseline_label}`" if baseline_label else ""
            kind = "real autolog" if run.real_autolog else "logged by hand"
            lines.append(
                f"- `{run.label}` ({run.run_name}; {kind}{against}): {seconds:.2f} s, "
                f"{folder.relative_to(out)}/ " + " ".join(p.name for p in result.images)
            )
        lines.append("")
    return lines


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m tests.autolog_gallery", description=__doc__.split("\n")[0]
    )
    parser.add_argument("out", help="output folder")
    parser.add_argument("--tracking-uri", help="a tracking server to log into (default: OUTDIR/mlflow.db)")
    args = parser.parse_args(argv)
    out = Path(args.out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    uri = args.tracking_uri or f"sqlite:///{out / 'mlflow.db'}"
    print(f"Logging the autolog runs into {uri} …", file=sys.stderr)
    runs = log_autolog_runs(uri, artifact_root=None if args.tracking_uri else (out / "artifacts").as_uri())
    lines = render_gallery(runs, out)
    (out / "index.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
