"""`python -m bot …` is `review-bot …`, kept for deploy pipelines that call the gate this way.

An entry point, like the console script: nothing imports it, so the core still never imports the
composition root or the handlers.
"""

from app import main

main()
