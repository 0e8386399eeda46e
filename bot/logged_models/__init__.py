"""MLflow 3 LoggedModels under review: `rules` groups a model's metrics by dataset and compares two
models on the same data only, `blocks` builds what the card and its thread show. Both pure;
bot.mlflow.logged_models reads."""
