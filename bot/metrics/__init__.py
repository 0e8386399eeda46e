"""What metric names mean: their role (train, validation, test), which way is better, which belong on
one chart panel, and what MLflow's stored values stand for. Pure: no MLflow, no Slack, no settings."""
