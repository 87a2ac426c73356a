"""Shared test fixtures: a tiny synthetic dataset instead of the real MNIST/Fashion-MNIST.

The session-wide ``tiny_data_root`` fixture writes both datasets as gzipped IDX files into a
temporary data root and points ``$RAM_ENV_DATA`` at it, and ``_offline_data_routes`` makes the
network routes of ``ram_env.datasets`` fail, so no test touches the user's cache or the network.

Test modules can reuse the helpers: ``from conftest import make_synthetic_dataset, write_idx``.
"""

from __future__ import annotations

import gzip
import os
import pathlib
from collections.abc import Iterator

import numpy as np
import pytest

SYNTHETIC_SIZES = {"train": 512, "test": 128}
SYNTHETIC_SEEDS = {"mnist": 0, "fashion-mnist": 1}
STRIPE_PERIODS = (2, 3, 4, 5, 6)
"""Class ``c`` has stripes of period ``STRIPE_PERIODS[c % 5]``, vertical when ``c >= 5``."""

IDX_NAMES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}


def write_idx(path: str | os.PathLike[str], array: np.ndarray) -> None:
    """Write a uint8 array (images ``[N, H, W]`` or labels ``[N]``) as an IDX file.

    The file is gzipped when its name ends in ``.gz``.
    """
    array = np.ascontiguousarray(array, dtype=np.uint8)
    header = bytes([0, 0, 0x08, array.ndim]) + np.array(array.shape, dtype=">u4").tobytes()
    data = header + array.tobytes()
    path = pathlib.Path(path)
    path.write_bytes(gzip.compress(data, mtime=0) if path.suffix == ".gz" else data)


def write_idx_dataset(
    directory: str | os.PathLike[str], arrays: dict[str, np.ndarray], *, gz: bool = True
) -> pathlib.Path:
    """Write the four standard IDX files of ``arrays`` (keys as in IDX_NAMES) into directory."""
    directory = pathlib.Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    for key, stem in IDX_NAMES.items():
        write_idx(directory / (f"{stem}.gz" if gz else stem), arrays[key])
    return directory


def _stripe_image(label: int, rng: np.random.Generator) -> np.ndarray:
    """28x28 uint8 stripes of the class's period and orientation, random phase, noisy.

    Every 8x8 window inside the 24x24 interior shows at least one full period, so any glimpse in
    the middle 20x20 region reveals the class. The 2-pixel border is zero.
    """
    period = STRIPE_PERIODS[label % len(STRIPE_PERIODS)]
    profile = ((np.arange(28) + rng.integers(period)) % period) < period // 2
    profile = profile * rng.uniform(180.0, 220.0)
    image = np.broadcast_to(profile, (28, 28)) if label >= 5 else profile[:, None] + np.zeros(28)
    image = np.clip(image + rng.normal(0.0, 8.0, (28, 28)), 0, 255).astype(np.uint8)
    image[:2], image[-2:], image[:, :2], image[:, -2:] = 0, 0, 0, 0
    return image


def make_synthetic_dataset(n_train: int, n_test: int, seed: int) -> dict[str, np.ndarray]:
    """A learnable stand-in for MNIST: keys ``{train,test}_{images,labels}``.

    Images are uint8 ``[N, 28, 28]``, labels uint8 ``[N]`` with classes 0..9 balanced (counts
    differ by at most one) in random order. Deterministic for a given seed.
    """
    rng = np.random.default_rng(seed)
    arrays = {}
    for split, n in (("train", n_train), ("test", n_test)):
        labels = rng.permutation(np.arange(n) % 10).astype(np.uint8)
        arrays[f"{split}_images"] = np.stack([_stripe_image(int(c), rng) for c in labels])
        arrays[f"{split}_labels"] = labels
    return arrays


@pytest.fixture(autouse=True, scope="session")
def tiny_data_root(tmp_path_factory: pytest.TempPathFactory) -> Iterator[pathlib.Path]:
    """Data root holding synthetic ``mnist`` and ``fashion-mnist`` IDX files (route 1 layout).

    ``$RAM_ENV_DATA`` points at it for the whole session (restored afterwards).
    """
    root = tmp_path_factory.mktemp("ram_env_data")
    for name, seed in SYNTHETIC_SEEDS.items():
        arrays = make_synthetic_dataset(SYNTHETIC_SIZES["train"], SYNTHETIC_SIZES["test"], seed)
        write_idx_dataset(root / name, arrays)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("RAM_ENV_DATA", str(root))
        patch.setenv("RAM_ENV_ALLOW_UNOFFICIAL", "1")  # the synthetic files are not MNIST's
        yield root


@pytest.fixture(autouse=True, scope="session")
def _offline_data_routes() -> Iterator[None]:
    """Make the torchvision download and every subprocess (pip, apt-get) of the data routes fail.

    Tests that exercise those routes replace the same functions with fakes.
    """
    from ram_env import datasets

    def refuse(*args: object, **kwargs: object) -> None:
        raise datasets._RouteFailed("network routes are disabled in the tests")

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(datasets, "_from_torchvision", refuse)
        patch.setattr(datasets, "_run", refuse)
        yield


@pytest.fixture(params=["kernels", "torch ops"])
def sensor_path(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Run a test on both paths of canvases, tables and glimpses: numba's compiled CPU loops
    (``ram_env.kernels``, the ``fast`` extra, which the dev install includes) and the PyTorch
    ops that every other device takes."""
    from ram_env import kernels

    if request.param == "torch ops":
        monkeypatch.setattr(kernels, "compiled", lambda: None)
    else:
        assert kernels.compiled() is not None, "numba is missing: pip install -e '.[fast]'"
    return request.param
