"""Statistical assertions shared by tests: Monte Carlo sweeps against closed forms."""

from __future__ import annotations

import math

from scipy import stats


def assert_monte_carlo_matches_closed_form(summaries, family_confidence: float = 0.95) -> None:
    """Every level's Monte Carlo mean lies within its simultaneous (Bonferroni) 95% interval of the closed form,
    and the plain per-level 95% CIs contain the closed form at ≥ 90% of the levels (nominal: 95%)."""
    random_levels = [s for s in summaries if s.n > 1 and s.expected is not None]
    assert random_levels
    per_level = 1 - (1 - family_confidence) / len(random_levels)
    for s in random_levels:
        half = stats.t.ppf(0.5 + per_level / 2, df=s.n - 1) * s.std / math.sqrt(s.n)
        assert abs(s.mean - s.expected) <= half, (s.model, s.perturbation, s.level, s.mean, s.expected, half)
    inside = sum(s.ci_low <= s.expected <= s.ci_high for s in random_levels)
    assert inside >= 0.9 * len(random_levels), f"{inside}/{len(random_levels)} per-level CIs contain the closed form"
    for s in summaries:
        if s.n == 1 and s.expected is not None:  # deterministic levels (std 0, p 0 or 1) are exact
            assert math.isclose(s.mean, s.expected, rel_tol=1e-9, abs_tol=1e-12)
