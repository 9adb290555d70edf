"""Training curves: a CSV appended as training goes, and a PNG plot when matplotlib is installed."""

from __future__ import annotations

import csv
from collections.abc import Sequence
from pathlib import Path

COLUMNS = ("epoch", "step", "train_loss", "dev_loss", "dev_wer", "lr", "elapsed_s")


class Curves:
    def __init__(self, out: Path):
        self.csv = out / "curves.csv"
        self.png = out / "curves.png"
        if not self.csv.exists():
            with open(self.csv, "w", newline="") as f:
                csv.writer(f).writerow(COLUMNS)

    def add(self, **values: float) -> None:
        with open(self.csv, "a", newline="") as f:
            csv.writer(f).writerow([values.get(c, "") for c in COLUMNS])
        if "dev_loss" in values:
            self.plot()

    def rows(self) -> list[dict[str, str]]:
        with open(self.csv, newline="") as f:
            return list(csv.DictReader(f))

    def plot(self) -> None:
        try:
            import matplotlib

            matplotlib.use("Agg")
            import matplotlib.pyplot as plt
        except ImportError:
            return
        rows = self.rows()
        fig, axes = plt.subplots(1, 2, figsize=(10, 4))
        for column, axis in (("train_loss", axes[0]), ("dev_loss", axes[0]), ("dev_wer", axes[1])):
            points = [(int(r["step"]), float(r[column])) for r in rows if r[column]]
            if points:
                axis.plot(*zip(*points, strict=False), marker="." if column != "train_loss" else None, label=column)
        axes[0].set_xlabel("step")
        axes[0].legend()
        axes[1].set_xlabel("step")
        axes[1].set_ylabel("WER %")
        fig.tight_layout()
        fig.savefig(self.png)
        plt.close(fig)


def append_curve(out: Path, columns: Sequence[str], **values: float) -> None:
    """One row of `out`/curves.csv (the header first, when the file is new): the trainers' curves without a plot."""
    path = out / "curves.csv"
    new = not path.exists()
    with open(path, "a", newline="") as f:
        writer = csv.writer(f)
        if new:
            writer.writerow(columns)
        writer.writerow([values.get(c, "") for c in columns])
