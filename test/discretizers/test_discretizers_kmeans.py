import weakref

import numpy as np
import pytest
import torch

from toolkit.discretizers import kmeans
from toolkit.discretizers.kmeans import (
    KMeansConfig,
    assign,
    fit_kmeans,
    kmeans_plus_plus,
    load_centers,
    reservoir_sample,
    save_centers,
)

TRUE_CENTERS = np.random.default_rng(0).normal(size=(6, 4)) * 10


def blobs(pass_index: int, chunks: int = 30, size: int = 200):
    """The same well-separated Gaussian blobs on every pass, in chunks of `size` frames."""
    rng = np.random.default_rng(123)
    for _ in range(chunks):
        labels = rng.integers(0, len(TRUE_CENTERS), size)
        yield (TRUE_CENTERS[labels] + rng.normal(size=(size, 4)) * 0.3).astype(np.float32)


SMALL = KMeansConfig(batch_size=500, n_init=3, max_iter=10, max_no_improvement=20, shuffle_batches=2)


def brute_force(x: torch.Tensor, c: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    d = ((x[:, None, :] - c[None, :, :]) ** 2).sum(-1)
    return d.argmin(1), d.min(1).values


@pytest.mark.parametrize("max_elements", [1 << 24, 70])  # one block, and many blocks of 2 rows
def test_assign_equals_brute_force(monkeypatch, max_elements):
    monkeypatch.setattr(kmeans, "ASSIGN_MAX_ELEMENTS", max_elements)
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(997, 16, generator=gen, dtype=torch.float64)
    c = torch.randn(33, 16, generator=gen, dtype=torch.float64)
    labels, dists = assign(x, c)
    ref_labels, ref_dists = brute_force(x, c)
    assert torch.equal(labels, ref_labels)
    assert torch.allclose(dists, ref_dists)
    empty_labels, _ = assign(x[:0], c)
    assert empty_labels.shape == (0,)


def test_float32_assignment_picks_a_nearest_centre():
    gen = torch.Generator().manual_seed(1)
    x, c = torch.randn(2000, 39, generator=gen), torch.randn(100, 39, generator=gen)
    labels, dists = assign(x, c)
    _, ref_dists = brute_force(x.double(), c.double())
    chosen = ((x.double() - c.double()[labels]) ** 2).sum(1)
    assert torch.allclose(chosen, ref_dists, rtol=1e-5)
    assert torch.allclose(dists.double(), ref_dists, rtol=1e-4)


def test_fit_recovers_blob_centres_and_is_deterministic():
    first = fit_kmeans(blobs, len(TRUE_CENTERS), SMALL, seed=3)
    found = first.centers.numpy()
    distance = ((found[:, None] - TRUE_CENTERS[None]) ** 2).sum(-1)
    # every centre found sits on a different true centre (a permutation), within the noise of its mean
    assert sorted(distance.argmin(1).tolist()) == list(range(len(TRUE_CENTERS)))
    assert distance.min(1).max() < 0.05
    assert first.num_frames == 30 * 200
    assert first.sample_inertia == pytest.approx(4 * 0.3**2, rel=0.2)
    again = fit_kmeans(blobs, len(TRUE_CENTERS), SMALL, seed=3)
    assert torch.equal(first.centers, again.centers)
    assert first.num_steps == again.num_steps
    other = fit_kmeans(blobs, len(TRUE_CENTERS), SMALL, seed=4)
    assert not torch.equal(first.centers, other.centers)


def test_fit_streams_chunks_without_holding_them():
    live: set[int] = set()
    peak_live = 0
    passes_seen: list[int] = []

    def source(pass_index: int):
        nonlocal peak_live
        passes_seen.append(pass_index)
        for i, chunk in enumerate(blobs(pass_index, chunks=100, size=50)):
            key = pass_index * 1000 + i
            live.add(key)
            weakref.finalize(chunk, live.discard, key)
            peak_live = max(peak_live, len(live))
            yield chunk

    config = KMeansConfig(batch_size=100, n_init=1, init_size=300, max_iter=3, max_no_improvement=None)
    result = fit_kmeans(source, 6, config, seed=0)
    assert passes_seen == [0, 1, 2, 3]  # one sampling pass, then max_iter update passes
    assert result.num_frames == 5000
    # the shuffle buffer holds 4 batches (400 frames) plus one chunk: a few chunks out of the 100 of a pass
    assert result.peak_buffered_frames <= 400 + 50
    assert peak_live <= 400 // 50 + 2
    assert result.num_steps == 3 * 50


def test_fit_rejects_a_one_shot_iterator_and_too_little_data():
    with pytest.raises(TypeError, match="several passes"):
        fit_kmeans(blobs(0), 6, SMALL)
    with pytest.raises(ValueError, match="only 10 frames to learn 20 clusters"):
        fit_kmeans([np.zeros((10, 3), np.float32)], 20, SMALL)
    with pytest.raises(ValueError, match="NaN or infinite"):
        fit_kmeans([np.full((50, 3), np.nan, np.float32)], 2, SMALL)
    # a re-iterable collection is fine
    result = fit_kmeans(list(blobs(0, chunks=5)), 6, SMALL)
    assert result.num_frames == 1000


def test_reassignment_revives_dead_centres():
    # k-means++ would never start two centres on one point; placing all but one far away simulates dead centres.
    rng = np.random.default_rng(0)
    data = [rng.normal(size=(1000, 2)).astype(np.float32) for _ in range(5)]
    centers = torch.tensor([[0.0, 0.0]] + [[1000.0, 1000.0]] * 4)
    state = kmeans._State(centers=centers, counts=torch.zeros(5, dtype=torch.float64))
    batch = torch.from_numpy(data[0])
    labels, _ = assign(batch, state.centers)
    kmeans._update(state, batch, labels)
    kmeans._reassign(state, batch, 0.01, rng)
    assert state.centers[1:].abs().max() < 10  # re-seeded on data frames
    assert (state.counts > 0).all()


def test_reservoir_sample_is_bounded_uniform_and_counts():
    chunks = [np.arange(i * 100, (i + 1) * 100, dtype=np.float32)[:, None] for i in range(100)]
    sample, seen = reservoir_sample(chunks, 500, np.random.default_rng(0))
    values = sample[:, 0].numpy()
    assert seen == 10000 and sample.shape == (500, 1)
    assert len(np.unique(values)) == 500  # no frame twice
    assert 3500 < values.mean() < 6500  # drawn from the whole stream, not its beginning
    small, seen = reservoir_sample(chunks[:2], 500, np.random.default_rng(0))
    assert seen == 200 and small.shape == (200, 1)


def test_kmeans_plus_plus_spreads_over_blobs():
    x = torch.from_numpy(np.concatenate(list(blobs(0, chunks=2))))
    centers = kmeans_plus_plus(x, 6, np.random.default_rng(0))
    nearest = ((centers.numpy()[:, None] - TRUE_CENTERS[None]) ** 2).sum(-1).argmin(1)
    assert sorted(nearest.tolist()) == list(range(6))


def test_save_and_load_centres(tmp_path):
    centers = torch.randn(7, 3)
    save_centers(tmp_path / "c.npy", centers)
    assert torch.equal(load_centers(tmp_path / "c.npy"), centers)
    np.save(tmp_path / "bad.npy", np.zeros(3))
    with pytest.raises(ValueError, match="bad.npy: expected a"):
        load_centers(tmp_path / "bad.npy")
    with pytest.raises(FileNotFoundError, match="missing.npy"):
        load_centers(tmp_path / "missing.npy")


def test_config_checks_ranges():
    with pytest.raises(ValueError, match="batch_size"):
        KMeansConfig(batch_size=0)
    with pytest.raises(ValueError, match="reassignment_ratio"):
        KMeansConfig(reassignment_ratio=1.5)
    assert KMeansConfig().resolved_init_size(100) == 30000
    assert KMeansConfig(init_size=50).resolved_init_size(100) == 300
