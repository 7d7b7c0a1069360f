"""Per-layer choices under a budget (AdaFire, algorithms.md §4.2-4.3).

Every layer has a few options, each with a cost and a sensitivity measured with only that
layer changed; the sums over layers stand for the network's. ``pareto_choice`` finds the
assignment with the least summed sensitivity whose summed cost fits the budget, keeping per
layer only the partial assignments not dominated by a cheaper one (the authors' frontier
search); swap the two tables to minimise cost under a sensitivity budget.
"""

from __future__ import annotations

import numpy as np


def pareto_choice(sensitivity: np.ndarray, cost: np.ndarray, budget: float) -> list[int]:
    """(layers, options) tables -> one option index per layer minimising the summed
    sensitivity with summed cost <= budget; the cheapest assignment if none fits."""
    frontier: list[tuple[float, float, tuple[int, ...]]] = [(0.0, 0.0, ())]
    for layer in range(len(cost)):
        grown = sorted((c + cost[layer, k], s + sensitivity[layer, k], (*chosen, k))
                       for c, s, chosen in frontier for k in range(cost.shape[1]))
        frontier = []
        for c, s, chosen in grown:
            if not frontier or s < frontier[-1][1]:
                frontier.append((c, s, chosen))
    fitting = [entry for entry in frontier if entry[0] <= budget]
    best = min(fitting, key=lambda e: e[1]) if fitting else frontier[0]
    return list(best[2])


def symmetric_kl(logits: np.ndarray, reference: np.ndarray) -> float:
    """Mean over samples of (KL(p||q) + KL(q||p)) / 2 between the softmaxes."""
    p, q = _log_softmax(logits), _log_softmax(reference)
    return float(((np.exp(p) - np.exp(q)) * (p - q)).sum(axis=1).mean() / 2)


def _log_softmax(x: np.ndarray) -> np.ndarray:
    x = x - x.max(axis=1, keepdims=True)
    return x - np.log(np.exp(x).sum(axis=1, keepdims=True))
