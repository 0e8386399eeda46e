"""`python -m tests.benchmarks.card_ratio [repeats] [steps]`: command → card posted against its floor
(one `get_run` plus one `chat.postMessage`, timed in the same run against the same servers), without the
rest of `make bench`. Prints each repeat, the medians, the ratio and the machine's load.
"""

from __future__ import annotations

import os
import sys

from tests.benchmarks import measure
from tests.benchmarks.__main__ import BIG_METRICS, BIG_PARAMS, BIG_STEPS, BIG_TIMEOUT
from tests.benchmarks.stack import running_stack

FLOOR_SAMPLES = 5


def main(repeats: int, steps: int) -> int:
    with running_stack() as stack:
        run_id, logged_s = measure.make_big_run(stack, BIG_PARAMS, BIG_METRICS, steps)
        print(
            f"run: {BIG_PARAMS} params, {BIG_METRICS} metrics x {steps:,} steps, logged in {logged_s:.1f} s"
        )
        timings, samples = [], []
        for i in range(repeats):
            timing = measure.command_to_card_and_chart(stack, run_id, f"U0CARD{i:03d}", BIG_TIMEOUT)
            floor = measure.card_floor(stack, run_id, FLOOR_SAMPLES)
            timings.append(timing)
            samples += floor.samples_s
            print(
                f"#{i + 1}: ack {timing.ack_s:.3f} s, card {timing.card_s:.3f} s, "
                f"chart {timing.chart_s:.3f} s, floor median {floor.median_s:.3f} s"
            )
        overall = measure.CardFloor(samples)
        card = measure.median([t.card_s for t in timings])
        ratio = measure.card_ratio(timings, overall)
        print(f"median card {card:.3f} s, median floor {overall.median_s:.3f} s, ratio {ratio:.2f}")
    print("load average (1, 5, 15 min):", " ".join(f"{x:.2f}" for x in os.getloadavg()))
    return 0


if __name__ == "__main__":
    args = [int(a) for a in sys.argv[1:]]
    sys.exit(main(args[0] if args else 7, args[1] if len(args) > 1 else BIG_STEPS))
