"""Fixtures of the leaderboard tests (defined in leaderboard_fixtures, which the tests also import helpers from)."""

from leaderboard_fixtures import empty_leaderboard, write_results  # noqa: F401
