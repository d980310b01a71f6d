"""Periodic-job schedules: the intervals that are evenly spaced on the clock, as cron lines.

procrastinate defers periodic jobs from cron lines (a 6th field gives seconds), so a schedule
is a grid on the wall clock and every worker computes the same ticks. A grid is evenly spaced
only if the interval divides the next larger unit: 90 s cannot be written as a cron line (it
would fire at :00 of every minute, 60 s apart), nor can 5400 s. Those intervals are refused at
settings validation, with this list.
"""

from __future__ import annotations


def _divisors(n: int) -> list[int]:
    return [d for d in range(1, n) if n % d == 0]


# seconds dividing a minute, minutes dividing an hour, hours dividing a day, and a day
SCHEDULE_INTERVALS_S: tuple[int, ...] = (
    *_divisors(60),
    *(60 * m for m in _divisors(60)),
    *(3600 * h for h in _divisors(24)),
    86_400,
)


def check_schedule_interval(interval_s: int) -> int:
    """``interval_s`` if it is an evenly spaced schedule, else ValueError listing the valid ones."""
    if interval_s not in SCHEDULE_INTERVALS_S:
        raise ValueError(
            f"{interval_s} s is not an evenly spaced schedule (jobs run on a grid of the clock: "
            "the interval must divide a minute, an hour or a day); valid: "
            + ", ".join(str(s) for s in SCHEDULE_INTERVALS_S)
        )
    return interval_s


def cron_for(interval_s: int) -> str:
    """The cron line that fires every ``interval_s`` seconds, on the clock's grid."""
    check_schedule_interval(interval_s)
    if interval_s < 60:
        return f"* * * * * */{interval_s}"
    if interval_s < 3600:
        return f"*/{interval_s // 60} * * * *"
    if interval_s < 86_400:
        return f"0 */{interval_s // 3600} * * *"
    return "0 0 * * *"
