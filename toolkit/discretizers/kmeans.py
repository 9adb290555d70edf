"""Streaming mini-batch k-means in torch: learns from chunks of frames without ever holding the training set.

The data come from a *pass source*: a callable `source(pass_index) -> iterable of (frames, dim) chunks` (or a
re-iterable such as a list), called once per pass over the data. Memory is bounded by the source's chunk size plus:

  * pass 0 draws a uniform random sample of at most `init_size` frames by reservoir sampling and counts the frames;
    `n_init` k-means++ initialisations are run on that sample and the one with the lowest inertia on it is kept;
  * passes 1..max_iter feed mini-batches of `batch_size` frames, drawn from a shuffle buffer of `shuffle_batches`
    batches (consecutive frames of one utterance are strongly correlated, so batches straight from the stream would
    drag the centres towards one speaker at a time);
  * each centre moves towards the mean of its batch members with a learning rate of 1 / (frames it has ever been
    given), the per-centre count rule of Sculley (2010), "Web-scale k-means clustering";
  * centres whose count falls below `reassignment_ratio` times the largest count are re-seeded on random frames of
    the current batch (so no centre stays dead);
  * training stops after `max_iter` passes, or earlier when an exponentially smoothed mini-batch inertia has not
    improved for `max_no_improvement` consecutive batches.

The defaults are the release's (MiniBatchKMeans: k-means++, batch 10000, n_init 20, max_iter 100,
max_no_improvement 100, reassignment_ratio 0.01). With a fixed seed and a deterministic source the result is
deterministic on CPU (CUDA's index_add_ is not bit-reproducible).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from toolkit.fileio import atomic_write

Chunk = np.ndarray | torch.Tensor
PassSource = Callable[[int], Iterable[Chunk]] | Iterable[Chunk]

# Distance matrices are computed in row blocks of at most this many elements (64 MiB of float32).
ASSIGN_MAX_ELEMENTS = 1 << 24


@dataclass
class KMeansConfig:
    batch_size: int = 10000  # frames per mini-batch
    n_init: int = 20  # k-means++ candidates; the best on the init sample is kept
    init_size: int | None = None  # frames in the init sample; None: 3 * batch_size (at least 3 * K)
    max_iter: int = 100  # passes over the data
    max_no_improvement: int | None = 100  # batches without a better smoothed inertia before stopping; None: never
    reassignment_ratio: float = 0.01  # re-seed centres with fewer than this share of the largest count; 0: never
    shuffle_batches: int = 4  # frames are shuffled in a buffer of this many batches before batching
    device: str = "cpu"  # where the distances are computed ("cuda" for large K and dimensions)

    def __post_init__(self):
        for name in ("batch_size", "n_init", "max_iter", "shuffle_batches"):
            if getattr(self, name) < 1:
                raise ValueError(f"kmeans.{name} must be >= 1, got {getattr(self, name)}")
        if self.init_size is not None and self.init_size < 1:
            raise ValueError(f"kmeans.init_size must be >= 1 or null, got {self.init_size}")
        if self.max_no_improvement is not None and self.max_no_improvement < 1:
            raise ValueError(f"kmeans.max_no_improvement must be >= 1 or null, got {self.max_no_improvement}")
        if not 0.0 <= self.reassignment_ratio < 1.0:
            raise ValueError(f"kmeans.reassignment_ratio must be in [0, 1), got {self.reassignment_ratio}")

    def resolved_init_size(self, num_clusters: int) -> int:
        size = self.init_size if self.init_size is not None else 3 * self.batch_size
        # k-means++ needs more points than centres to have any choice (scikit-learn applies the same floor).
        return size if size >= num_clusters else 3 * num_clusters


@dataclass
class KMeansResult:
    centers: torch.Tensor  # (K, dim) float32 on CPU
    num_frames: int  # frames in one pass over the source
    num_steps: int  # mini-batch updates made
    num_passes: int  # update passes started (the sampling pass not counted)
    stopped_early: bool  # the smoothed inertia stopped improving before max_iter passes
    init_inertia: float  # mean squared distance on the init sample of the chosen initialisation
    sample_inertia: float  # the same for the final centres
    smoothed_inertia: float  # the smoothed mini-batch inertia at the end
    peak_buffered_frames: int  # most frames held at once by the shuffle buffer or the reservoir


# ---- assignment ----


def squared_norms(x: torch.Tensor) -> torch.Tensor:
    return (x * x).sum(dim=1)


def assign(
    x: torch.Tensor, centers: torch.Tensor, centers_sq: torch.Tensor | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Nearest centre of every row of x and its squared distance: ||x||^2 - 2 x.c + ||c||^2, argmin over c.

    Computed in row blocks so that the (rows, K) distance matrix stays under ASSIGN_MAX_ELEMENTS; x may live on
    another device than the centres (each block is moved). Returns int64 labels and float distances on centers'
    device.
    """
    if centers_sq is None:
        centers_sq = squared_norms(centers)
    rows = max(1, ASSIGN_MAX_ELEMENTS // max(1, centers.shape[0]))
    labels, dists = [], []
    for start in range(0, x.shape[0], rows):
        block = x[start : start + rows].to(device=centers.device, dtype=centers.dtype)
        # ||c||^2 - 2 x.c: the ||x||^2 term does not change the argmin, so it is added to the winners only.
        partial = torch.addmm(centers_sq.unsqueeze(0), block, centers.T, alpha=-2.0)
        best = partial.argmin(dim=1)
        labels.append(best)
        dists.append((partial.gather(1, best.unsqueeze(1)).squeeze(1) + squared_norms(block)).clamp_min(0.0))
    if not labels:
        return (
            torch.zeros(0, dtype=torch.long, device=centers.device),
            torch.zeros(0, dtype=centers.dtype, device=centers.device),
        )
    return torch.cat(labels), torch.cat(dists)


# ---- initialisation ----


def kmeans_plus_plus(x: torch.Tensor, k: int, rng: np.random.Generator) -> torch.Tensor:
    """Greedy k-means++ (Arthur & Vassilvitskii 2007): each new centre is the best of 2 + ln(k) candidates drawn
    with probability proportional to the squared distance to the centres chosen so far."""
    n = x.shape[0]
    if n < k:
        raise ValueError(f"k-means++ needs at least {k} points, got {n}")
    trials = 2 + int(math.log(k))
    x_sq = squared_norms(x)
    centers = x.new_empty((k, x.shape[1]))
    first = int(rng.integers(n))
    centers[0] = x[first]
    closest = (x_sq - 2.0 * (x @ x[first]) + x_sq[first]).clamp_min(0.0)
    for c in range(1, k):
        # The cumulative sum is taken in float64 on CPU so that draws are exact and device-independent.
        cumulative = closest.double().cumsum(0).cpu().numpy()
        draws = rng.random(trials) * cumulative[-1]
        candidates = np.minimum(np.searchsorted(cumulative, draws, side="right"), n - 1)
        index = torch.from_numpy(candidates).to(x.device)
        cand_sq = torch.addmm(x_sq.unsqueeze(0), x[index], x.T, alpha=-2.0) + x_sq[index].unsqueeze(1)
        cand_closest = torch.minimum(cand_sq.clamp_min(0.0), closest.unsqueeze(0))
        best = int(cand_closest.sum(dim=1).argmin())
        closest = cand_closest[best]
        centers[c] = x[int(candidates[best])]
    return centers


def reservoir_sample(chunks: Iterable[Chunk], size: int, rng: np.random.Generator) -> tuple[torch.Tensor, int]:
    """A uniform random sample of at most `size` frames from a stream of chunks (Algorithm R, vectorised per chunk),
    and the number of frames seen. Holds only the sample and the current chunk."""
    sample: torch.Tensor | None = None
    filled = seen = 0
    for chunk in chunks:
        frames = as_frames(chunk)
        if sample is None:
            sample = frames.new_empty((size, frames.shape[1]))
        elif frames.shape[1] != sample.shape[1]:
            raise ValueError(f"chunks have different dimensions: {sample.shape[1]} and {frames.shape[1]}")
        take = min(size - filled, frames.shape[0])
        sample[filled : filled + take] = frames[:take]
        filled += take
        rest = frames[take:]
        if rest.shape[0]:
            # Frame number i (0-based, i >= size) replaces slot j ~ U{0..i} when j < size. When two frames of the
            # chunk hit the same slot the later one wins, as it would frame by frame.
            index = np.arange(seen + take, seen + frames.shape[0])
            slots = rng.integers(0, index + 1)
            keep = np.flatnonzero(slots < size)
            if keep.size:
                reversed_slots = slots[keep][::-1]
                unique_slots, first_in_reversed = np.unique(reversed_slots, return_index=True)
                winners = keep[::-1][first_in_reversed]
                sample[torch.from_numpy(unique_slots)] = rest[torch.from_numpy(winners)]
        seen += frames.shape[0]
    if sample is None:
        raise ValueError("the data source yielded no frames")
    return sample[:filled], seen


# ---- streaming ----


def as_frames(chunk: Chunk) -> torch.Tensor:
    frames = torch.as_tensor(chunk, dtype=torch.float32)
    if frames.dim() != 2:
        raise ValueError(f"expected chunks of shape (frames, dim), got {tuple(frames.shape)}")
    return frames


def _pass_source(source: PassSource) -> Callable[[int], Iterable[Chunk]]:
    if callable(source):
        return source
    if iter(source) is source:
        # A generator or iterator is used up after one pass, and k-means needs several.
        raise TypeError(
            "k-means needs several passes over the data: give a callable pass_index -> iterable of chunks "
            "(e.g. a function returning a new generator) or a re-iterable collection, not a one-shot iterator"
        )
    return lambda _pass: source


class _ShuffleBuffer:
    """Turns a stream of chunks into shuffled mini-batches, holding at most `capacity` frames plus one chunk."""

    def __init__(self, batch_size: int, capacity: int, rng: np.random.Generator):
        self.batch_size = batch_size
        self.capacity = capacity
        self.rng = rng
        self.peak = 0

    def _emit(self, pending: list[torch.Tensor], final: bool) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        frames = torch.cat(pending)
        frames = frames[torch.from_numpy(self.rng.permutation(frames.shape[0]))]
        cut = frames.shape[0] if final else frames.shape[0] // self.batch_size * self.batch_size
        batches = list(frames[:cut].split(self.batch_size))
        return batches, [frames[cut:]] if cut < frames.shape[0] else []

    def batches(self, chunks: Iterable[Chunk]) -> Iterator[torch.Tensor]:
        pending: list[torch.Tensor] = []
        held = 0
        for chunk in chunks:
            frames = as_frames(chunk)
            pending.append(frames)
            held += frames.shape[0]
            self.peak = max(self.peak, held)
            if held >= self.capacity:
                batches, pending = self._emit(pending, final=False)
                held = sum(p.shape[0] for p in pending)
                yield from batches
        if held:
            batches, _ = self._emit(pending, final=True)
            yield from batches


@dataclass
class _State:
    centers: torch.Tensor
    counts: torch.Tensor  # float64: frames each centre has absorbed (exceeds float32's exact range on big corpora)
    since_reassign: int = 0


def _update(state: _State, batch: torch.Tensor, labels: torch.Tensor) -> None:
    """Move each centre towards its batch members with learning rate 1 / count (Sculley's per-centre rule)."""
    k = state.centers.shape[0]
    members = torch.bincount(labels, minlength=k)
    sums = torch.zeros_like(state.centers).index_add_(0, labels, batch)
    state.counts += members
    hit = members > 0
    rate = (1.0 / state.counts[hit]).to(state.centers.dtype).unsqueeze(1)
    # c + (sum - n c) / count  ==  (c * old_count + sum) / new_count, without forming the large product.
    state.centers[hit] += (sums[hit] - members[hit].to(batch.dtype).unsqueeze(1) * state.centers[hit]) * rate


def _reassign(state: _State, batch: torch.Tensor, ratio: float, rng: np.random.Generator) -> None:
    """Re-seed centres that (almost) never win on random frames of the batch.

    Checked after every 10 * K frames or as soon as a centre has count 0, as in scikit-learn's MiniBatchKMeans.
    """
    k = state.centers.shape[0]
    state.since_reassign += batch.shape[0]
    if ratio <= 0 or not (bool((state.counts == 0).any()) or state.since_reassign >= 10 * k):
        return
    state.since_reassign = 0
    low = state.counts < ratio * state.counts.max()
    if not bool(low.any()):
        return
    chosen = torch.nonzero(low).squeeze(1)
    cap = max(1, batch.shape[0] // 2)
    if chosen.numel() > cap:  # keep the emptiest ones; more would replace half the model from one batch
        chosen = chosen[state.counts[chosen].argsort()[:cap]]
    frames = torch.from_numpy(rng.choice(batch.shape[0], size=chosen.numel(), replace=False)).to(batch.device)
    state.centers[chosen] = batch[frames]
    # A fresh centre gets the smallest surviving count, so that it is neither frozen nor immediately re-seeded.
    state.counts[chosen] = state.counts[~low].min()


def fit_kmeans(
    source: PassSource,
    num_clusters: int,
    config: KMeansConfig | None = None,
    seed: int = 0,
    progress: bool = False,
) -> KMeansResult:
    """Learn `num_clusters` centres from the chunks `source` yields; see the module docstring."""
    config = config or KMeansConfig()
    if num_clusters < 1:
        raise ValueError(f"num_clusters must be >= 1, got {num_clusters}")
    passes = _pass_source(source)
    rng = np.random.default_rng(seed)
    device = torch.device(config.device)

    init_size = config.resolved_init_size(num_clusters)
    sample, num_frames = reservoir_sample(passes(0), init_size, rng)
    if num_frames < num_clusters:
        raise ValueError(f"only {num_frames} frames to learn {num_clusters} clusters; use fewer clusters or more data")
    if not bool(torch.isfinite(sample).all()):
        raise ValueError("the frames contain NaN or infinite values")
    sample = sample.to(device)
    centers, init_inertia = None, math.inf
    for _ in range(config.n_init):
        candidate = kmeans_plus_plus(sample, num_clusters, rng)
        inertia = float(assign(sample, candidate)[1].mean())
        if inertia < init_inertia:
            centers, init_inertia = candidate, inertia
    state = _State(centers=centers.clone(), counts=torch.zeros(num_clusters, dtype=torch.float64, device=device))

    buffer = _ShuffleBuffer(config.batch_size, config.shuffle_batches * config.batch_size, rng)
    # The smoothing weight of scikit-learn: a batch counts as much as its share of the data, doubled.
    alpha = min(1.0, 2.0 * config.batch_size / (num_frames + 1))
    smoothed, best_smoothed, no_improvement = math.nan, math.inf, 0
    steps = passes_started = 0
    stopped = False
    bar = tqdm(total=config.max_iter, desc="k-means", unit="pass", disable=not progress, mininterval=1.0)
    for index in range(1, config.max_iter + 1):
        passes_started += 1
        chunks = iter(passes(index))
        try:
            for batch in buffer.batches(chunks):
                batch = batch.to(device)
                labels, dists = assign(batch, state.centers)
                batch_inertia = float(dists.mean())
                _update(state, batch, labels)
                _reassign(state, batch, config.reassignment_ratio, rng)
                steps += 1
                smoothed = batch_inertia if steps == 1 else smoothed * (1.0 - alpha) + batch_inertia * alpha
                if smoothed < best_smoothed:
                    best_smoothed, no_improvement = smoothed, 0
                else:
                    no_improvement += 1
                if config.max_no_improvement is not None and no_improvement >= config.max_no_improvement:
                    stopped = True
                    break
        finally:
            close = getattr(chunks, "close", None)
            if close is not None:  # release the source's files when a pass ends early
                close()
        bar.set_postfix(inertia=f"{smoothed:.4g}", steps=steps, refresh=False)
        bar.update(1)
        if stopped:
            break
    bar.close()
    return KMeansResult(
        centers=state.centers.float().cpu(),
        num_frames=num_frames,
        num_steps=steps,
        num_passes=passes_started,
        stopped_early=stopped,
        init_inertia=init_inertia,
        sample_inertia=float(assign(sample, state.centers)[1].mean()),
        smoothed_inertia=smoothed,
        peak_buffered_frames=max(buffer.peak, sample.shape[0]),
    )


# ---- storage ----


def save_centers(path: str | Path, centers: torch.Tensor | np.ndarray) -> None:
    """Centres as a (K, dim) float32 .npy file, written atomically."""
    array = np.ascontiguousarray(torch.as_tensor(centers).float().cpu().numpy())
    with atomic_write(path, mode="wb") as f:
        np.save(f, array)


def load_centers(path: str | Path) -> torch.Tensor:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: k-means centres not found")
    try:
        array = np.load(path, allow_pickle=False)
    except (ValueError, OSError) as e:
        raise ValueError(f"{path}: not a .npy array of centres ({e})") from None
    if array.ndim != 2 or array.shape[0] < 1:
        raise ValueError(f"{path}: expected a (clusters, dim) array, got shape {array.shape}")
    return torch.from_numpy(array.astype(np.float32, copy=False))


# Frames per block read from a feature file: small enough that the shuffle buffer mixes many places of the corpus.
FILE_BLOCK_FRAMES = 1024


@dataclass
class FileFrames:
    """A k-means pass source over a raw float32 feature file: blocks in a new seeded random order every pass.

    The blocks are read with plain file reads rather than through a memory map: every page of a map that is read
    stays in the process's resident set until the pass ends, so with a map the peak RSS grows by the size of the
    file (test/bench/bench_kmeans_memory.py measures both), which batch schedulers count against the job.
    """

    path: Path
    num_frames: int
    dim: int
    seed: int
    block_frames: int = FILE_BLOCK_FRAMES

    def __call__(self, pass_index: int) -> Iterator[np.ndarray]:
        blocks = math.ceil(self.num_frames / self.block_frames)
        row_bytes = self.dim * np.dtype(np.float32).itemsize
        with open(self.path, "rb") as f:
            for b in np.random.default_rng([self.seed, pass_index]).permutation(blocks):
                first = int(b) * self.block_frames
                count = min(self.block_frames, self.num_frames - first)
                f.seek(first * row_bytes)
                yield np.fromfile(f, dtype=np.float32, count=count * self.dim).reshape(count, self.dim)
