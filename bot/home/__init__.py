"""The App Home tab: what waits on the person who opens it (app_home_opened -> views.publish)."""
