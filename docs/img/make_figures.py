"""The concept figures of the docs (``python docs/img/make_figures.py`` rewrites them): dense vs compact
attention over a sequence with missing positions."""

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

HERE = Path(__file__).resolve().parent


def dense_vs_compact(path: Path) -> None:
    observed = np.array([1, 0, 1, 1, 0, 0, 1, 1], bool)  # True = observed
    L, kept = len(observed), int(observed.sum())
    fig, axes = plt.subplots(1, 3, figsize=(12, 3.8), gridspec_kw={"width_ratios": [1.4, 1.4, 1]})
    ax = axes[0]
    ax.imshow(observed[None].astype(float), cmap="Greens", vmin=-0.3, vmax=1.2, aspect="equal")
    for i, o in enumerate(observed):
        ax.text(i, 0, "x" if o else "NaN", ha="center", va="center", fontsize=9)
    ax.set_title("input: mask from the data\n(True = observed)")
    ax.set_yticks([]), ax.set_xticks(range(L))
    ax = axes[1]
    weights = np.where(observed[None, :] & observed[:, None], 1.0, 0.0)
    ax.imshow(weights, cmap="Blues", vmin=-0.2, vmax=1.2)
    ax.set_title(f"dense: {L}x{L} scores,\nmissing keys get exactly 0 weight")
    ax.set_xlabel("key position"), ax.set_ylabel("query position")
    ax = axes[2]
    ax.imshow(np.ones((kept, kept)), cmap="Blues", vmin=-0.2, vmax=1.2)
    positions = np.flatnonzero(observed)
    ax.set_xticks(range(kept), positions), ax.set_yticks(range(kept), positions)
    ax.set_title(f"compact: {kept} observed tokens gathered,\n{kept}x{kept} scores, positions kept")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


if __name__ == "__main__":
    dense_vs_compact(HERE / "dense-vs-compact.png")
