"""Prompt versions under review (MLflow's Prompt Registry): `rules` turns a version into text and diffs
two of them, `blocks` builds what the card and its thread show. Both pure; bot.mlflow.prompts reads."""
