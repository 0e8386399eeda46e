"""Link unfurls: MLflow UI links pasted in Slack become a live summary (link_shared -> chat.unfurl)."""
