"""Statistical assertions shared by tests: Monte Carlo sweeps against closed forms."""

from __future__ import annotations

import math

from scipy import stats

from cognitive_reserve.intervals import HONEST_FLAGS


def assert_monte_carlo_matches_closed_form(summaries, family_confidence: float = 0.95) -> None:
    """Every level's Monte Carlo mean lies within its simultaneous (Bonferroni) 95% interval of the closed form,
    and the per-level 95% CIs (those reported: not flagged) miss the closed form no more often than intervals that
    cover 95 % would, bar a 1 % chance."""
    random_levels = [s for s in summaries if s.n > 1 and s.expected is not None]
    assert random_levels
    per_level = 1 - (1 - family_confidence) / len(random_levels)
    for s in random_levels:
        half = stats.t.ppf(0.5 + per_level / 2, df=s.n - 1) * s.std / math.sqrt(s.n)
        assert abs(s.mean - s.expected) <= half, (s.model, s.perturbation, s.level, s.mean, s.expected, half)
    reported = [s for s in random_levels if s.flag in HONEST_FLAGS]
    misses = sum(not s.ci_low <= s.expected <= s.ci_high for s in reported)
    allowed = stats.binom.ppf(0.99, len(reported), 0.05)  # what intervals that cover 95 % miss, 99 times in 100
    assert misses <= allowed, f"{misses}/{len(reported)} per-level CIs miss the closed form (at most {allowed:.0f})"
    for s in summaries:
        if s.n == 1 and s.expected is not None:  # deterministic levels (std 0, p 0 or 1) are exact
            assert math.isclose(s.mean, s.expected, rel_tol=1e-9, abs_tol=1e-12)
