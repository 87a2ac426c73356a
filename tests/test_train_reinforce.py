"""train_reinforce.py: train and test modes, exact resumption, checkpoint safety."""

import json
import pathlib

import pytest
import torch

import train_reinforce
from agents.checkpoint import CheckpointError, load_agent, load_checkpoint, save_checkpoint

TIMING = {"seconds", "images_per_second", "elapsed_seconds"}


#: The least a checkpoint's config holds (``agents.checkpoint._layout_problems``).
MINIMAL_CONFIG = {"env": "GlimpseMNIST-v0", "model": {}}


def run(folder, *extra):
    argv = [
        "--train-subset", "96", "--batch-size", "32", "--eval-batch-size", "40", "--M", "2",
        "--core-size", "64", "--glimpse-features", "64", "--lr", "3e-3", "--threads", "1",
        "--plot-every", "0", "--ckpt-dir", str(folder), *extra,
    ]  # fmt: skip
    return train_reinforce.main(argv)


def history(folder):
    rows = json.loads((folder / "metrics.json").read_text())
    return [{k: v for k, v in row.items() if k not in TIMING} for row in rows]


def test_train_then_test_the_best_checkpoint(tmp_path, capsys):
    assert run(tmp_path, "--epochs", "2") == 0
    for name in ("last.pt", "best.pt", "metrics.csv", "metrics.json", "test.json"):
        assert (tmp_path / name).is_file()
    assert list(tmp_path.glob("events.out.tfevents.*"))
    assert len(history(tmp_path)) == 2
    assert run(tmp_path, "--test") == 0
    out = capsys.readouterr().out
    assert "test error (%) over 128 images" in out and "M=2" in out and "mean policy" in out
    errors = json.loads((tmp_path / "test.json").read_text())["test_error"]
    assert set(errors) == {"M=1", "M=2", "mean policy"}
    model, payload = load_agent(tmp_path / "best.pt")
    assert payload["config"]["env"] == "GlimpseMNIST-v0"
    assert payload["config"]["model"]["core_size"] == 64 and payload["epoch"] >= 1
    assert not model.training


def interrupt_after(epochs, monkeypatch):
    """Make the trainer raise KeyboardInterrupt (Ctrl-C) in epoch ``epochs + 1``."""
    calls = []
    real = train_reinforce.train_epoch

    def train_epoch(*args, **kwargs):
        calls.append(1)
        if len(calls) > epochs:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(train_reinforce, "train_epoch", train_epoch)


@pytest.mark.parametrize("schedule", ["cosine", "plateau"])
def test_resume_after_ctrl_c_continues_exactly_as_an_uninterrupted_run(
    tmp_path, monkeypatch, schedule
):
    straight, resumed = tmp_path / "straight", tmp_path / "resumed"
    assert run(straight, "--epochs", "3", "--lr-schedule", schedule) == 0
    with monkeypatch.context() as patch:
        interrupt_after(1, patch)
        # figures every epoch draw no randomness, so they do not change the run either
        args = ("--epochs", "3", "--lr-schedule", schedule, "--plot-every", "1")
        assert run(resumed, *args) == 130
    assert len(history(resumed)) == 1
    assert run(resumed, "--epochs", "3", "--lr-schedule", schedule, "--resume") == 0
    assert history(straight) == history(resumed)
    a, b = load_checkpoint(straight / "last.pt"), load_checkpoint(resumed / "last.pt")
    for name, tensor in a["model"].items():
        torch.testing.assert_close(tensor, b["model"][name], rtol=0, atol=0)
    assert len(list((resumed / "figures").glob("epoch_001*"))) == 3


def test_a_moved_run_folder_resumes_exactly(tmp_path, monkeypatch):
    straight, moved = tmp_path / "straight", tmp_path / "moved"
    assert run(straight, "--epochs", "2", "--lr-schedule", "plateau") == 0
    with monkeypatch.context() as patch:
        interrupt_after(1, patch)
        assert run(tmp_path / "first", "--epochs", "2", "--lr-schedule", "plateau") == 130
    (tmp_path / "first").rename(moved)  # e.g. copied back from another machine
    assert run(moved, "--epochs", "2", "--lr-schedule", "plateau", "--resume") == 0
    assert history(straight) == history(moved)
    assert not (tmp_path / "first").exists()  # the TensorBoard events follow the folder too
    assert len(list(moved.glob("events.out.tfevents.*"))) == 2
    assert load_checkpoint(moved / "last.pt")["config"]["log_dir"] == str(moved)


def test_a_run_saved_on_another_kind_of_device_continues_with_fresh_streams(tmp_path, capsys):
    assert run(tmp_path, "--epochs", "1", "--lr-schedule", "plateau") == 0
    payload = load_checkpoint(tmp_path / "last.pt")
    # What a CUDA run saves: its device, and Philox generator states (16 bytes), which a CPU
    # generator cannot take.
    payload["config"]["device"] = "cuda"
    for name in ("noise", "train_env", "valid_env"):
        payload["rng"][name] = torch.zeros(16, dtype=torch.uint8)
    save_checkpoint(payload, tmp_path / "last.pt")
    twin = tmp_path / "twin"  # the same checkpoint, resumed twice: the new streams are seeded
    twin.mkdir()
    for name in ("last.pt", "best.pt", "metrics.json", "metrics.csv"):
        (twin / name).write_bytes((tmp_path / name).read_bytes())
    capsys.readouterr()
    resume = ("--epochs", "2", "--lr-schedule", "plateau", "--resume", "--device", "cpu")
    assert run(tmp_path, *resume) == 0
    assert "on another kind of device (--device cuda there)" in capsys.readouterr().out
    assert [row["epoch"] for row in history(tmp_path)] == [1, 2]
    assert load_checkpoint(tmp_path / "last.pt")["config"]["device"] == "cpu"
    assert run(twin, *resume) == 0
    assert history(twin) == history(tmp_path)


def test_more_epochs_on_resume_only_under_the_plateau_schedule(tmp_path, capsys):
    assert run(tmp_path / "plateau", "--epochs", "1", "--lr-schedule", "plateau") == 0
    assert run(tmp_path / "plateau", "--epochs", "2", "--lr-schedule", "plateau", "--resume") == 0
    assert len(history(tmp_path / "plateau")) == 2
    assert run(tmp_path / "cosine", "--epochs", "1") == 0
    assert run(tmp_path / "cosine", "--epochs", "2", "--resume") == 2
    assert "epochs: saved 1, now 2" in capsys.readouterr().err


def test_refuses_to_overwrite_resume_a_mismatch_or_load_a_corrupt_file(tmp_path, capsys):
    assert run(tmp_path, "--epochs", "1") == 0
    assert run(tmp_path, "--epochs", "1") == 2  # would overwrite the run
    assert "--resume" in capsys.readouterr().err
    assert run(tmp_path, "--epochs", "2", "--resume", "--core", "lstm") == 2
    assert "core: saved 'rnn', now 'lstm'" in capsys.readouterr().err
    last = tmp_path / "last.pt"
    last.write_bytes(last.read_bytes()[:100])
    assert run(tmp_path, "--epochs", "2", "--resume") == 2
    assert "corrupt" in capsys.readouterr().err
    assert run(tmp_path / "empty", "--resume") == 2
    assert "no checkpoint" in capsys.readouterr().err
    assert not (tmp_path / "empty").exists()  # a failed resume makes no folder


def test_atomic_save_keeps_the_last_good_checkpoint_when_writing_fails(tmp_path, monkeypatch):
    path = tmp_path / "last.pt"
    save_checkpoint({"model": {}, "config": MINIMAL_CONFIG, "epoch": 1}, path)

    def crash(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", crash)
    with pytest.raises(OSError, match="disk full"):
        save_checkpoint({"model": {}, "config": MINIMAL_CONFIG, "epoch": 2}, path)
    assert load_checkpoint(path)["epoch"] == 1
    assert [p.name for p in tmp_path.iterdir()] == ["last.pt"]  # no temporary file left


class Unpicklable:
    """Any class outside torch's allowlist: weights_only loading must refuse it."""


def test_unsafe_or_foreign_files_are_refused(tmp_path):
    torch.save(
        {"model": Unpicklable(), "config": MINIMAL_CONFIG, "epoch": 1}, tmp_path / "unsafe.pt"
    )
    with pytest.raises(CheckpointError, match="cannot read"):
        load_checkpoint(tmp_path / "unsafe.pt")
    torch.save({"weights": torch.zeros(1)}, tmp_path / "foreign.pt")
    with pytest.raises(CheckpointError, match="not a ram-env checkpoint"):
        load_checkpoint(tmp_path / "foreign.pt")
    # another project's file in the common layout, without a digest (which only warns)
    torch.save({"model": {"fc.weight": torch.zeros(2, 3)}, "config": {"lr": 0.1}, "epoch": 3},
               tmp_path / "layout.pt")  # fmt: skip
    with pytest.raises(CheckpointError, match="lacks the run's settings"):
        load_checkpoint(tmp_path / "layout.pt")
    torch.save({"model": [1], "config": None, "epoch": -1}, tmp_path / "odd.pt")
    with pytest.raises(CheckpointError, match=r"state dict.*settings.*count of epochs"):
        load_checkpoint(tmp_path / "odd.pt")


@pytest.mark.parametrize(
    ("flags", "named"),
    [
        (["--valid-size", "0"], "--valid-size"),
        (["--valid-size", "1.5"], "--valid-size"),
        (["--train-subset", "-5"], "--train-subset"),
        (["--batch-size", "0"], "--batch-size"),
        (["--M", "0"], "--M"),
        (["--std", "0"], "--std"),
        (["--plot-every", "-1"], "--plot-every"),
        (["--init-from", ""], "--init-from"),
        (["--lr", "inf"], "--lr"),
        (["--lr", "nan"], "--lr"),
        (["--std", "inf"], "--std"),
        (["--reinforce-weight", "inf"], "--reinforce-weight"),
        (["--reinforce-weight", "-1"], "--reinforce-weight"),
        (["--entropy-weight", "nan"], "--entropy-weight"),
        (["--weight-decay", "-0.1"], "--weight-decay"),
        (["--checkpoint", "runs/other/best.pt"], "--checkpoint"),  # only --test scores another
        (["--lr-patience", "5"], "--lr-patience"),  # the cosine schedule never reads it
        # Finite in Python, inf as the float32 tensors they become: refused, not NaN mid-run.
        (["--std", "1e39"], "--std"),
        (["--lr", "1e39"], "--lr"),
        (["--reinforce-weight", "1e39"], "--reinforce-weight"),
        # An empty path names nothing (an unset shell variable), never "the default".
        (["--test", "--checkpoint", ""], "--checkpoint is empty"),
        (["--run-name", ""], "--run-name is empty"),
        (["--ckpt-dir", " "], "--ckpt-dir is empty"),
        (["--log-dir", ""], "--log-dir is empty"),
        (["--test", "--resume"], "give --resume or --test, not both"),
    ],
)
def test_bad_flags_are_refused_by_name(flags, named, capsys):
    with pytest.raises(SystemExit):
        train_reinforce.parse_args(flags)
    assert named in capsys.readouterr().err


def test_glimpses_are_standardised_with_the_task_dataset_statistics():
    fashion = train_reinforce.run_config(
        train_reinforce.parse_args(["--env", "GlimpseFashionMNIST-v0"])
    )
    assert (fashion["model"]["glimpse_mean"], fashion["model"]["glimpse_std"]) == (0.286, 0.353)
    as_mnist = train_reinforce.run_config(
        train_reinforce.parse_args(["--env", "GlimpseFashionMNIST-v0", "--glimpse-stats", "mnist"])
    )
    assert as_mnist["model"]["glimpse_mean"] == 0.1307


def test_a_new_run_never_overwrites_another_runs_best_or_metrics(tmp_path, capsys):
    assert run(tmp_path, "--epochs", "1", "--patch-size", "12") == 0
    (tmp_path / "last.pt").unlink()
    before = {name: (tmp_path / name).read_bytes() for name in ("best.pt", "metrics.json")}
    assert run(tmp_path, "--epochs", "1") == 2
    assert "holds another run (best.pt, metrics.json, metrics.csv)" in capsys.readouterr().err
    assert before == {name: (tmp_path / name).read_bytes() for name in before}


def test_task_recipes_set_defaults_and_a_given_flag_wins():
    translated = train_reinforce.parse_args(["--env", "GlimpseTranslatedMNIST-v0"])
    assert translated.std == train_reinforce.TASK_RECIPES["GlimpseTranslatedMNIST-v0"]["std"]
    given = train_reinforce.parse_args(["--env", "GlimpseTranslatedMNIST-v0", "--std", "0.05"])
    assert given.std == 0.05
    assert train_reinforce.parse_args([]).std == 0.1
    fashion = train_reinforce.parse_args(["--env", "GlimpseFashionMNIST-v0"])
    assert (fashion.weight_decay, train_reinforce.parse_args([]).weight_decay) == (0.05, 0.05)
    assert translated.weight_decay == 0.05
    for env_id in ("GlimpseClutteredMNIST-v0", "GlimpseClutteredMNIST100-v0"):
        assert train_reinforce.parse_args(["--env", env_id]).weight_decay == 0.05
    undecayed = ["--env", "GlimpseClutteredMNIST100-v0", "--weight-decay", "0"]
    assert train_reinforce.parse_args(undecayed).weight_decay == 0.0
    assert train_reinforce.parse_args(["--env", "GlimpseCatch-v0"]).weight_decay == 0.0


def test_flipped_bytes_in_a_weight_are_refused(tmp_path):
    path = tmp_path / "ckpt.pt"
    weight = torch.arange(64, dtype=torch.float32).view(8, 8) / 7
    save_checkpoint({"model": {"w": weight}, "config": MINIMAL_CONFIG, "epoch": 1}, path)
    assert torch.equal(load_checkpoint(path)["model"]["w"], weight)
    data = bytearray(path.read_bytes())
    at = bytes(data).index(weight.numpy().tobytes()) + 100
    data[at] ^= 0x40
    path.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match="does not match its digest"):
        load_checkpoint(path)


def test_a_checkpoint_with_code_is_refused_without_advice_to_load_it_unsafely(tmp_path):
    path = tmp_path / "evil.pt"
    torch.save(
        {"model": {}, "config": MINIMAL_CONFIG, "epoch": 1, "x": pathlib.Path("x")}, path
    )  # a class
    with pytest.raises(CheckpointError) as error:
        load_checkpoint(path)
    assert "never code" in str(error.value) and "weights_only" not in str(error.value)


def test_resume_rebuilds_the_metrics_and_stale_temporaries_are_removed(tmp_path):
    plateau = ("--lr-schedule", "plateau")
    assert run(tmp_path, "--epochs", "1", *plateau) == 0
    rows = (tmp_path / "metrics.csv").read_text()
    (tmp_path / "metrics.csv").unlink()  # a crash after the checkpoint, before the metrics
    stale = tmp_path / ".last.pt.999999999.abcd1234.tmp"  # a killed write's leftover
    stale.write_bytes(b"partial")
    assert run(tmp_path, "--epochs", "1", "--resume", *plateau) == 0  # nothing left to train
    assert (tmp_path / "metrics.csv").read_text() == rows and stale.exists()
    assert run(tmp_path, "--epochs", "2", "--resume", *plateau) == 0
    assert not stale.exists()


@pytest.mark.parametrize("device", ["meta", "xyz", "cuda:7"])
def test_a_device_that_cannot_work_fails_before_any_run_folder(tmp_path, capsys, device):
    assert run(tmp_path / "run", "--device", device) == 2
    assert "--device" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()


def test_a_run_from_before_new_settings_and_defaults_resumes(tmp_path):
    """A checkpoint without the newer settings (and trained with an older default std) resumes
    with its own values; its metrics without newer columns are extended, not broken."""
    plateau = ("--lr-schedule", "plateau", "--std", "0.05")
    assert run(tmp_path, "--epochs", "1", *plateau) == 0
    path = tmp_path / "last.pt"
    payload = load_checkpoint(path)
    for key in ("samples_per_image", "reinforce_weight", "glimpse_stats", "weight_decay"):
        del payload["config"][key]
    for key in ("glimpse_mean", "glimpse_std"):
        del payload["config"]["model"][key]
    for row in payload["history"]:
        del row["elapsed_seconds"]
    payload.pop("digest")
    save_checkpoint(payload, path)
    assert run(tmp_path, "--epochs", "2", "--resume", "--lr-schedule", "plateau") == 0
    rows = json.loads((tmp_path / "metrics.json").read_text())
    assert len(rows) == 2 and "elapsed_seconds" in rows[1]
    assert load_checkpoint(path)["config"]["std"] == 0.05


def test_weight_decay_is_decoupled_and_zero_is_plain_adam():
    """--weight-decay w shrinks each weight by lr x w per step, apart from the gradient
    (AdamW); with 0 the optimizer steps exactly as plain Adam."""
    config = train_reinforce.run_config(
        train_reinforce.parse_args(["--core-size", "8", "--lr", "0.01", "--weight-decay", "0.5"])
    )
    model = train_reinforce.build_model(config, torch.device("cpu"))
    before = [p.detach().clone() for p in model.parameters()]
    optimizer = train_reinforce.build_optimizer(model, config)
    for p in model.parameters():
        p.grad = torch.zeros_like(p)  # no gradient: Adam's own step is 0
    optimizer.step()
    for old, new in zip(before, model.parameters(), strict=True):
        torch.testing.assert_close(new.detach(), old * (1 - 0.01 * 0.5), rtol=0, atol=0)
    plain = train_reinforce.run_config(
        train_reinforce.parse_args(["--core-size", "8", "--weight-decay", "0"])
    )
    models = [train_reinforce.build_model(plain, torch.device("cpu")) for _ in range(2)]
    models[1].load_state_dict(models[0].state_dict())
    optimizers = [
        train_reinforce.build_optimizer(models[0], plain),
        torch.optim.Adam(models[1].parameters(), lr=plain["lr"]),
    ]
    for step in range(3):
        for network, adam in zip(models, optimizers, strict=True):
            for index, p in enumerate(network.parameters()):
                p.grad = torch.full_like(p, 0.1 * (step + index + 1))
            adam.step()
    for a, b in zip(*(m.parameters() for m in models), strict=True):
        assert torch.equal(a, b)


def test_sigterm_and_a_background_sigint_stop_like_ctrl_c():
    import os
    import signal

    saved = signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)
    try:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # as for a job started in the background
        train_reinforce.stop_cleanly_on_signals()
        for signum in (signal.SIGTERM, signal.SIGINT):
            with pytest.raises(KeyboardInterrupt):
                os.kill(os.getpid(), signum)  # the handler runs before the next bytecode
    finally:
        signal.signal(signal.SIGINT, saved[0])
        signal.signal(signal.SIGTERM, saved[1])


def test_settings_are_one_typed_dataclass_stored_in_the_checkpoint(tmp_path):
    """``Args`` (tyro): task defaults, model sizes from RAMConfig, stored and reloaded whole."""
    from agents.ram import RAMConfig

    translated = train_reinforce.parse_args(["--env", "GlimpseTranslatedMNIST-v0"])
    assert isinstance(translated, train_reinforce.Args)
    assert (translated.n_glimpses, translated.patch_size, translated.n_scales) == (8, 12, 3)
    assert train_reinforce.Args().core_size == RAMConfig.core_size
    assert run(tmp_path, "--epochs", "1", "--std", "0.2") == 0
    saved = load_checkpoint(tmp_path / "last.pt")["config"]
    again = train_reinforce.Args.from_config(saved)
    assert (again.std, again.core_size, again.train_subset, again.ckpt_dir) == (
        0.2, 64, 96, str(tmp_path)
    )  # fmt: skip
    # --test defaults to the checkpoint's settings: no flag repeats them.
    tested = train_reinforce.parse_args(["--test", "--ckpt-dir", str(tmp_path)])
    assert (tested.std, tested.core_size) == (0.2, 64)


@pytest.mark.parametrize("value", [True, 2.0, "3", -1])
def test_the_one_integer_check_refuses_bools_floats_strings_and_range(value):
    from ram_env.core import check_int

    with pytest.raises(ValueError, match="--x must be"):
        check_int("--x", value, low=0)
    assert check_int("--x", 3, low=0) == 3


def test_a_subset_smaller_than_a_batch_is_refused_before_training(tmp_path, capsys):
    assert run(tmp_path, "--train-subset", "16") == 2
    err = capsys.readouterr().err
    assert "no global batch of 32 images (--batch-size 32 x" in err
    assert err.strip().endswith("fits in --train-subset 16")
    assert not tmp_path.exists() or not any(tmp_path.iterdir())


def test_too_few_training_images_for_the_run_are_refused_before_its_folder(tmp_path, capsys):
    """The synthetic training split has 512 images: --valid-size 0.95 leaves 26, fewer than a
    batch of 32; --train-subset 600 asks for more than the 461 left after --valid-size 0.1."""
    assert run(tmp_path / "a", "--valid-size", "0.95", "--train-subset", "None") == 2
    assert "fits in the 26 training images (512 less --valid-size 0.95)" in (
        capsys.readouterr().err
    )
    assert run(tmp_path / "b", "--train-subset", "600") == 2
    assert "--train-subset 600: only 461 training images" in capsys.readouterr().err
    assert run(tmp_path / "c", "--valid-size", "0.95") == 2  # the subset of 96 is not there
    assert "--train-subset 96: only 26 training images" in capsys.readouterr().err
    assert run(tmp_path / "d", "--valid-size", "0.9995") == 2  # holds out every image
    assert "--valid-size 0.9995: holding out 512 of 512 images" in capsys.readouterr().err
    assert not any(tmp_path.iterdir())


def test_init_from_starts_a_new_run_from_another_runs_weights(tmp_path, capsys):
    first, second = tmp_path / "first", tmp_path / "second"
    assert run(first, "--epochs", "1") == 0
    source = load_checkpoint(first / "best.pt")
    # lr 1e-12: the second run's weights stay the first run's (a random start would not);
    # another --location-init is no difference (the weights replace the initialisation)
    warm = ("--lr", "1e-12", "--lr-schedule", "plateau", "--location-init", "center")
    # --train-patience counts from the run's own best epoch (1 here: its weights, and so its
    # accuracy, stay the start's), not from the start's epoch 0: it stops after epoch 2
    flags = ("--epochs", "3", "--train-patience", "1", "--init-from", str(first / "best.pt"))
    assert run(second, *warm, *flags) == 0
    out = capsys.readouterr().out
    assert "initialising the network from" in out and "GlimpseMNIST-v0, epoch 1)" in out
    assert "settings that differ from that run's: " in out
    assert "--location-init 'random' there, 'center' here" in out
    assert "--lr-schedule 'cosine' there, 'plateau' here" in out and "validate at" in out
    best, last = load_checkpoint(second / "best.pt"), load_checkpoint(second / "last.pt")
    assert best["epoch"] == 0 and last["epoch"] == 2  # the start is epoch 0, and it won
    for name, tensor in source["model"].items():
        assert torch.equal(best["model"][name], tensor)
        torch.testing.assert_close(last["model"][name], tensor, atol=1e-8, rtol=0)
    assert best["config"]["init_from"] == str(first / "best.pt")
    assert last["initial_weights"]["digest"] == source["digest"]
    assert len(history(second)) == 2  # a new run: its own history

    # It resumes like any run, without the source (which it never reads again).
    first.rename(tmp_path / "moved")
    assert run(second, "--resume", "--train-patience", "5", "--lr", "1e-12") == 0
    assert [row["epoch"] for row in history(second)] == [1, 2, 3]
    assert load_checkpoint(second / "last.pt")["initial_weights"] == last["initial_weights"]


def test_init_from_a_run_from_before_a_setting_names_the_value_it_trained_with(tmp_path, capsys):
    """A source checkpoint that predates --weight-decay trained without it: the new run's
    --weight-decay is reported as a difference, with the value that run had (0.0)."""
    first = tmp_path / "first"
    assert run(first, "--epochs", "1") == 0
    payload = load_checkpoint(first / "best.pt")
    del payload["config"]["weight_decay"]
    save_checkpoint(payload, first / "best.pt")
    capsys.readouterr()
    flags = ("--epochs", "1", "--weight-decay", "0.01", "--init-from", str(first / "best.pt"))
    assert run(tmp_path / "second", *flags) == 0
    assert "--weight-decay 0.0 there, 0.01 here" in capsys.readouterr().out
    last = load_checkpoint(tmp_path / "second" / "last.pt")
    assert last["config"]["weight_decay"] == 0.01
    assert last["optimizer"]["param_groups"][0]["weight_decay"] == 0.01  # it trained with it


def test_init_from_refuses_what_cannot_start_the_run_before_making_its_folder(tmp_path, capsys):
    source, other = tmp_path / "source", tmp_path / "other"
    assert run(source, "--epochs", "1") == 0
    capsys.readouterr()
    path = source / "best.pt"
    broken = tmp_path / "broken.pt"  # the config of a fitting network, weights that are not
    save_checkpoint({**load_checkpoint(path), "model": {"core.weight": torch.zeros(2)}}, broken)
    cases = [
        (("--core-size", "32", "--init-from", str(path)), "core_size (--core-size): 64 there"),
        (("--env", "GlimpseFashionMNIST-v0", "--init-from", str(path)), "(--env / --glimpse"),
        (("--init-from", str(tmp_path / "missing.pt")), "no checkpoint at"),
        (("--init-from", str(source)), "is a folder: give a checkpoint file, e.g."),
        (("--init-from", str(broken)), "its weights do not fit"),
    ]
    for flags, message in cases:
        assert run(other, "--epochs", "1", *flags) == 2
        assert message in capsys.readouterr().err
        assert not other.exists()  # refused before the run folder was made
