"""Peak memory of streaming k-means: it must not grow with the training set.

    tools/venv/bin/python test/bench/bench_kmeans_memory.py [--frames 1000000] [--dim 64] [--threads 1]

Writes N and 2N random frames (a mixture of Gaussians) as raw float32 files, then in a fresh subprocess per size and
source fits `fit_kmeans` on the file and reports the child's peak resident memory (ru_maxrss) and the ratio 2N / N; a
fresh process per run is what makes each peak that run's own. Two pass sources read the same blocks in the same
order: `kmeans.FileFrames` (plain file reads, what the mfcc_kmeans and ssl_kmeans fits use) and `MemmapFrames`
below (a memory map, the baseline). k-means itself holds the shuffle buffer, the init sample and one block,
so the ratio should be ~1.0; pages of a memory map that have been read count as resident until the map is closed,
which is what the second source shows.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

from toolkit.hardware import host_summary

CHILD = """
import json, resource, sys, time
import torch
torch.set_num_threads({threads})
from toolkit.discretizers.kmeans import KMeansConfig, fit_kmeans
from toolkit.discretizers.kmeans import FileFrames
import math, numpy as np

class MemmapFrames(FileFrames):
    # The same blocks in the same order, read through a memory map.
    def __call__(self, pass_index):
        frames = np.memmap(self.path, dtype=np.float32, mode="r", shape=(self.num_frames, self.dim))
        blocks = math.ceil(self.num_frames / self.block_frames)
        for b in np.random.default_rng([self.seed, pass_index]).permutation(blocks):
            yield np.array(frames[b * self.block_frames : (b + 1) * self.block_frames])
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
began = time.time()
config = KMeansConfig(batch_size=10000, n_init=2, max_iter={passes}, max_no_improvement=None)
result = fit_kmeans({source}({path!r}, {frames}, {dim}, seed=0), {clusters}, config, seed=0)
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({{"before_kib": before, "peak_kib": peak, "seconds": time.time() - began,
                   "frames": result.num_frames, "steps": result.num_steps,
                   "buffered": result.peak_buffered_frames}}))
"""


def write_frames(path: Path, frames: int, dim: int, seed: int) -> None:
    """A mixture of 50 Gaussians, written in blocks so that this process stays small too."""
    rng = np.random.default_rng(seed)
    means = rng.normal(size=(50, dim)).astype(np.float32) * 3
    with open(path, "wb") as f:
        for start in range(0, frames, 100_000):
            n = min(100_000, frames - start)
            block = means[rng.integers(0, 50, n)] + rng.normal(size=(n, dim)).astype(np.float32)
            f.write(block.astype(np.float32).tobytes())


def run_child(path: Path, frames: int, source: str, args) -> dict:
    code = CHILD.format(
        threads=args.threads,
        passes=args.passes,
        source=source,
        path=str(path),
        frames=frames,
        dim=args.dim,
        clusters=args.clusters,
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise SystemExit(f"child failed:\n{proc.stderr}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--frames", type=int, default=1_000_000, help="N; the second run uses 2N")
    parser.add_argument("--dim", type=int, default=64)
    parser.add_argument("--clusters", type=int, default=100)
    parser.add_argument("--passes", type=int, default=2, help="k-means passes after the sampling pass")
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads in the children")
    args = parser.parse_args()
    print(host_summary())
    print(f"streaming k-means: {args.clusters} clusters, {args.dim}-dim frames, {args.passes} passes + sampling")
    results = {}
    sources = ("FileFrames", "MemmapFrames")
    with tempfile.TemporaryDirectory(prefix="bench_kmeans_memory.") as tmp:
        for frames in (args.frames, 2 * args.frames):
            path = Path(tmp) / f"frames_{frames}.f32"
            write_frames(path, frames, args.dim, seed=frames)
            size = path.stat().st_size / 2**20
            for source in sources:
                r = results[source, frames] = run_child(path, frames, source, args)
                print(
                    f"{source:>12} {frames:>10,d} frames ({size:4.0f} MiB file): peak RSS {r['peak_kib'] / 1024:7.1f} "
                    f"MiB (after imports {r['before_kib'] / 1024:5.1f}), {r['steps']} steps, "
                    f"{r['buffered']:,d} frames buffered at most, {r['seconds']:.1f}s"
                )
            path.unlink()
    for source in sources:
        small, large = (results[source, f] for f in (args.frames, 2 * args.frames))
        above = [(r["peak_kib"] - r["before_kib"]) / 1024 for r in (small, large)]
        note = "  (the fits; target ~1.0)" if source == "FileFrames" else "  (memory-map baseline)"
        print(
            f"{source:>12}: peak RSS ratio 2N / N {large['peak_kib'] / small['peak_kib']:.3f}; above the imports "
            f"{above[0]:.1f} MiB -> {above[1]:.1f} MiB{note}"
        )


if __name__ == "__main__":
    main()
