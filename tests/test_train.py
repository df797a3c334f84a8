"""train.py: what a training epoch measures besides its losses."""
import pytest
import torch

import data
import stats
from train import duplicate_edges


def test_duplicate_edges_count_the_copies_of_an_image_in_each_group():
    g = torch.Generator().manual_seed(0)
    y = torch.arange(60) % 6                                                # 10 images per class
    sub = data.TrainSubset.build(torch.zeros(60, 1, 4, 4, dtype=torch.uint8), y, 6, "cpu")
    G, n = 5, 7
    batches = data.group_batches(sub.y, sub.members, sub.counts, G, n, g)   # (B, G·n)
    by_loops = [(n - len(set(group))) / (n - 1) for b in batches.tolist() for group in
                (b[i * n:(i + 1) * n] for i in range(G))]
    assert duplicate_edges(batches, G, n).item() == pytest.approx(sum(by_loops) / len(by_loops), rel=1e-6)


@pytest.mark.parametrize("per_class, expected", [(10, 7.9), (25, 4.0), (50, 2.2)])
def test_duplicate_edges_at_the_training_sizes_of_the_size_curve(per_class, expected):
    """An anchor and 15 draws with replacement from m same-class images hold 1 + (m − 1)(1 − (1 − 1/m)^15) distinct
    images on average, so about 7.9, 4.0 and 2.2 of the 15 tree edges join copies at 100, 250 and 500 images."""
    m, n = per_class, 16
    formula = n - (1 + (m - 1) * (1 - (1 - 1 / m) ** (n - 1)))
    assert formula == pytest.approx(expected, abs=0.05)
    assert stats.expected_duplicate_edges(m, n) * (n - 1) == pytest.approx(formula)  # what the size curve shows
    y = torch.arange(10 * m) % 10
    sub = data.TrainSubset.build(torch.zeros(10 * m, 1, 4, 4, dtype=torch.uint8), y, 10, "cpu")
    g = torch.Generator().manual_seed(1)
    fractions = [duplicate_edges(data.group_batches(sub.y, sub.members, sub.counts, 8, n, g), 8, n).item()
                 for _ in range(200)]
    assert sum(fractions) / len(fractions) * (n - 1) == pytest.approx(formula, abs=0.1)
