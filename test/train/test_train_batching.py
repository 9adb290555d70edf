import random

import pytest

from toolkit.train.data import collate, make_batches, shard_batches, spread_subset
from toolkit.train.schedule import lr_multiplier


@pytest.fixture
def lengths():
    rng = random.Random(0)
    return [rng.randint(20, 300) for _ in range(500)]


def test_batches_respect_budget_and_cover_everything_once(lengths):
    batches = make_batches(lengths, max_tokens=2000, seed=1, epoch=0)
    assert sorted(i for b in batches for i in b) == list(range(len(lengths)))
    assert all(max(lengths[i] for i in b) * len(b) <= 2000 for b in batches)
    padded = sum(max(lengths[i] for i in b) * len(b) for b in batches)
    assert padded < 1.15 * sum(lengths)  # length bucketing keeps padding low


def test_batch_order_is_a_function_of_seed_and_epoch(lengths):
    assert make_batches(lengths, 2000, 1, 3) == make_batches(lengths, 2000, 1, 3)
    assert make_batches(lengths, 2000, 1, 3) != make_batches(lengths, 2000, 1, 4)
    assert make_batches(lengths, 2000, 1, 3, max_sequences=4)[0].__len__() <= 4


def test_overlong_sequence_gets_its_own_batch():
    assert make_batches([10, 5000, 10], max_tokens=100, seed=0, epoch=0, shuffle=False) == [[0, 2], [1]]


def test_shards_have_equal_counts_and_do_not_overlap(lengths):
    batches = make_batches(lengths, 2000, 1, 0)
    shards = [shard_batches(batches, r, 3) for r in range(3)]
    assert len({len(s) for s in shards}) == 1
    flat = [tuple(b) for s in shards for b in s]
    assert len(flat) == len(set(flat))


def test_collate_right_pads():
    ids, mask = collate([[5, 6, 7], [8]], pad_id=0)
    assert ids.tolist() == [[5, 6, 7], [8, 0, 0]]
    assert mask.tolist() == [[1, 1, 1], [1, 0, 0]]


def test_padding_to_a_multiple_bounds_the_shapes_and_keeps_the_budget(lengths):
    batches = make_batches(lengths, max_tokens=2000, seed=1, epoch=0, pad_to_multiple=16)
    assert sorted(i for b in batches for i in b) == list(range(len(lengths)))
    shapes = set()
    for b in batches:
        ids, mask = collate([[7] * lengths[i] for i in b], pad_id=0, pad_to_multiple=16)
        assert ids.shape[1] % 16 == 0 and ids.shape[1] - max(lengths[i] for i in b) < 16
        assert ids.numel() <= 2000 or len(b) == 1
        assert mask.sum().item() == sum(lengths[i] for i in b)
        shapes.add(tuple(ids.shape))
    unpadded = {(len(b), max(lengths[i] for i in b)) for b in batches}
    assert len(shapes) < len(unpadded) / 2


def test_pad_to_multiple_must_be_positive():
    from toolkit.train.config import BatchConfig

    with pytest.raises(ValueError, match="pad_to_multiple must be >= 1"):
        BatchConfig(pad_to_multiple=0)


def test_schedules():
    assert lr_multiplier(0, 100, 10, "cosine") == pytest.approx(0.1)
    assert lr_multiplier(9, 100, 10, "linear") == pytest.approx(1.0)
    assert lr_multiplier(55, 100, 10, "linear") == pytest.approx(0.5)
    assert lr_multiplier(55, 100, 10, "cosine") == pytest.approx(0.5)
    assert lr_multiplier(100, 100, 10, "cosine", final_ratio=0.1) == pytest.approx(0.1)
    assert lr_multiplier(50, 100, 0, "constant") == 1.0
    with pytest.raises(ValueError, match="unknown schedule"):
        lr_multiplier(0, 1, 0, "step")


def test_spread_subset_covers_the_whole_list():
    items = list(range(10))
    assert spread_subset(items, 5) == [0, 2, 4, 6, 8]
    assert spread_subset(items, 3) == [0, 3, 6]
    assert spread_subset(items, None) == items
    assert spread_subset(items, 20) == items
    assert spread_subset([], 3) == []
