"""Pictures a person looks at: sample grids and training curves (PNG)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np


def unit_range(images, value_range: str):
    """The one model-range -> [0, 1] formula (``tanh``: ``(x + 1) / 2``; ``unit``: ``x``),
    unclipped; works on numpy arrays and tensors alike (the export uses it in the graph)."""
    return (images + 1.0) / 2.0 if value_range == "tanh" else images


def to_unit(images, value_range: str) -> np.ndarray:
    """Map images from the model's range (``tanh`` [-1, 1] or ``unit`` [0, 1]) to [0, 1], as numpy."""
    return np.clip(unit_range(np.asarray(images, dtype=np.float32), value_range), 0.0, 1.0)


def image_grid(images: np.ndarray, ncols: int | None = None, pad: int = 2) -> np.ndarray:
    """Tile ``(N, H, W, C)`` images in [0, 1] into one ``uint8`` image with ``pad`` px gaps."""
    n, h, w, c = images.shape
    ncols = ncols or int(math.ceil(math.sqrt(n)))
    nrows = int(math.ceil(n / ncols))
    grid = np.ones((nrows * (h + pad) + pad, ncols * (w + pad) + pad, c), dtype=np.float32) * 0.5
    for i in range(n):
        r, q = divmod(i, ncols)
        top, left = pad + r * (h + pad), pad + q * (w + pad)
        grid[top : top + h, left : left + w] = images[i]
    return (grid * 255.0 + 0.5).astype(np.uint8)


def save_grid(images, path: str | Path, value_range: str = "unit", ncols: int | None = None, scale: int = 2) -> Path:
    """Write a PNG grid of ``images``; small images are enlarged ``scale`` times (nearest)."""
    from PIL import Image

    grid = image_grid(to_unit(images, value_range), ncols)
    if grid.shape[-1] == 1:
        grid = grid[..., 0]
    img = Image.fromarray(grid)
    if scale > 1:
        img = img.resize((img.width * scale, img.height * scale), Image.NEAREST)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    img.save(path)
    return path


def plot_history(history: dict, path: str | Path) -> Path:
    """Plot every metric of a ``history.json`` mapping against the epoch.

    Draws on its own :class:`matplotlib.figure.Figure` (no pyplot, no global
    backend switch), so a notebook's inline plots keep working.
    """
    from matplotlib.figure import Figure

    epochs = history.get("epoch", [])
    keys = [k for k in history if k not in ("epoch", "seconds") and not k.startswith("val_") and not k.endswith("_epochs")]
    fig = Figure(figsize=(4 * max(len(keys), 1), 3))
    axes = fig.subplots(1, max(len(keys), 1), squeeze=False)
    for ax, key in zip(axes[0], keys):
        ax.plot(history.get(f"{key}_epochs", epochs), history[key], marker="o" if f"{key}_epochs" in history else None, label=key)
        if f"val_{key}" in history:
            ax.plot(epochs[-len(history[f"val_{key}"]) :], history[f"val_{key}"], label=f"val_{key}")
        ax.set_xlabel("epoch")
        ax.set_title(key)
        ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    return Path(path)
