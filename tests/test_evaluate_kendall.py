"""The normalized Kendall tau distance (paper eqs. 12-13)."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from scipy import stats

from reseq import kendall_tau_distance
from reseq.errors import ReseqError
from reseq.evaluate import discordant_pairs


def brute_force(order) -> float:
    m = len(order)
    bad = sum(order[i] > order[j] for i, j in itertools.combinations(range(m), 2))
    return bad / (m * (m - 1) / 2)


def test_identity_is_zero_and_reversal_is_one():
    for m in (2, 3, 10, 101):
        assert kendall_tau_distance(np.arange(m)) == 0.0
        assert kendall_tau_distance(np.arange(m)[::-1]) == 1.0


def test_hand_checked_permutation():
    # [2, 0, 3, 1]: discordant pairs (2,0), (2,1), (3,1) -> 3 of 6
    assert discordant_pairs([2, 0, 3, 1]) == 3
    assert kendall_tau_distance([2, 0, 3, 1]) == 0.5
    # [0, 2, 1, 4, 3]: (2,1) and (4,3) -> 2 of 10
    assert kendall_tau_distance([0, 2, 1, 4, 3]) == pytest.approx(0.2, abs=0)


def test_equals_brute_force_and_scipy_on_random_permutations():
    rng = np.random.default_rng(0)
    for m in [2, 3, 4, 5, 7, 16, 50, 137]:
        for _ in range(5):
            p = rng.permutation(m)
            k = kendall_tau_distance(p)
            assert k == brute_force(p)  # exact, not approximately
            tau = stats.kendalltau(np.arange(m), p).statistic
            assert k == pytest.approx((1 - tau) / 2, abs=1e-12)


def test_equals_scipy_count_on_long_orders():
    # the bitwise count at lengths around powers of two (where the number of passes changes)
    rng = np.random.default_rng(1)
    for m in [255, 256, 257, 1024, 4097]:
        p = rng.permutation(m) * 7 - 3
        tau = stats.kendalltau(np.arange(m), p).statistic
        assert discordant_pairs(p) == round((1 - tau) * m * (m - 1) / 4)
    assert discordant_pairs(np.arange(5000)[::-1]) == 5000 * 4999 // 2


def test_ranks_need_not_be_zero_based_and_short_orders():
    assert kendall_tau_distance([10, 30, 20]) == kendall_tau_distance([0, 2, 1])
    assert kendall_tau_distance([]) == 0.0
    assert kendall_tau_distance([5]) == 0.0


@pytest.mark.parametrize("bad", [[0, 0, 1], [[0, 1], [1, 0]], ["a", "b"]])
def test_bad_orders_are_rejected(bad):
    with pytest.raises(ReseqError):
        kendall_tau_distance(bad)
