"""`--init` across label sets (a FER+ model fine-tuned on AI Hub's Korean classes), colours and sizes."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest

from conftest import prepare_aihub, tiny_config
from maeum.data.records import AIHUB7
from maeum.labels import FERPLUS7
from maeum.preprocess import InputSpec, to_model_input

torch = pytest.importorskip("torch")


def test_a_ferplus_model_fine_tunes_on_aihub_keeping_the_classes_both_have(
    small_ferplus: Path, tmp_path_factory: pytest.TempPathFactory, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    from maeum.training.trainer import build_model, train
    from maeum.training.warm_start import initial_weights

    gray48 = {"input": {"size": 48, "color": "gray", "mean": [0.5], "std": [0.5]}}  # what the FER+ folder gives
    train(tiny_config(small_ferplus, tmp_path / "ferplus", epochs=1, **gray48))
    checkpoint = tmp_path / "ferplus" / "best.pt"
    old = torch.load(checkpoint, map_location="cpu", weights_only=False)
    assert old["labels"] == list(FERPLUS7)

    aihub = prepare_aihub(tmp_path_factory, 48, "gray")
    cfg = tiny_config(aihub, tmp_path / "aihub", init=str(checkpoint), **gray48)
    model = build_model(cfg.model, AIHUB7, InputSpec.from_dict(cfg.input))
    fresh = {k: v.clone() for k, v in model.state_dict().items()}
    weights = initial_weights(str(checkpoint), cfg, model, AIHUB7, np.zeros((0, 48, 48), np.uint8))  # crops: ONNX only
    changed = [k for k in weights if not torch.equal(weights[k], old["model"][k])]
    assert changed, "the classifier must change: the class order differs"
    assert len(changed) < len(weights) / 4  # the backbone comes over as it is
    for key in changed:  # mini_xception's classifier: a convolution with one output channel per class
        new, was = weights[key], old["model"][key]
        assert new.shape[0] == 7
        for label in ("happiness", "anger", "sadness", "neutral"):
            assert torch.equal(new[AIHUB7.index(label)], was[FERPLUS7.index(label)])
        for label in ("embarrassment", "anxiety", "hurt"):
            assert torch.equal(new[AIHUB7.index(label)], fresh[key][AIHUB7.index(label)])

    with caplog.at_level(logging.INFO, logger="maeum.training"):
        train(cfg)
    assert "rows for happiness, anger, sadness, neutral carried over, embarrassment, anxiety, hurt start fresh" in (
        caplog.text
    )
    tuned = torch.load(tmp_path / "aihub" / "best.pt", map_location="cpu", weights_only=False)
    assert tuned["labels"] == list(AIHUB7)


def test_init_from_another_architecture_is_refused(prepared_aihub_32: Path, tmp_path: Path) -> None:
    from maeum.training.trainer import train

    train(tiny_config(prepared_aihub_32, tmp_path / "first", epochs=1))
    first = str(tmp_path / "first" / "best.pt")
    second = tiny_config(prepared_aihub_32, tmp_path / "second", model="emotionnet", init=first)
    with pytest.raises(ValueError, match="holds a mini_xception model, not emotionnet"):
        train(second)
    with pytest.raises(FileNotFoundError, match=r"is a run folder: pass its checkpoint, .*first/best\.pt"):
        train(tiny_config(prepared_aihub_32, tmp_path / "third", init=str(tmp_path / "first")))


def test_weights_or_a_run_that_cannot_fit_are_refused_before_the_data_is_read(
    prepared_aihub_32: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Reading a large data set takes minutes: a wrong --init, --out or torchrun is said at once."""
    from maeum.errors import ConfigError
    from maeum.training import trainer
    from maeum.training.runtime import Runtime

    trainer.train(tiny_config(prepared_aihub_32, tmp_path / "first", epochs=1, tensorboard=False))
    first = str(tmp_path / "first" / "best.pt")

    def unread(*args: object, **kwargs: object) -> None:
        raise AssertionError("the data was read before the refusal")

    monkeypatch.setattr(trainer, "load_training_data", unread)
    with pytest.raises(ConfigError, match="holds a mini_xception model, not emotionnet; pass --model mini_xception"):
        trainer.train(tiny_config(prepared_aihub_32, tmp_path / "second", model="emotionnet", init=first))
    with pytest.raises(ConfigError, match="ferplus-resnet-s holds a resnet_s model, not mini_xception"):
        trainer.train(tiny_config(prepared_aihub_32, tmp_path / "second", init="ferplus-resnet-s"))
    other_mean = {"input": {"size": 32, "color": "gray", "mean": [0.4], "std": [0.5]}}
    with pytest.raises(ConfigError, match=r"takes input normalised with mean \[0.5\]"):
        trainer.train(tiny_config(prepared_aihub_32, tmp_path / "second", init=first, **other_mean))
    # Resuming the first run with another model, input or targets.
    with pytest.raises(ConfigError, match=r"last\.pt holds a mini_xception model, not emotionnet; use another --out"):
        trainer.train(tiny_config(prepared_aihub_32, tmp_path / "first", model="emotionnet"))
    with pytest.raises(ConfigError, match="takes input"):
        trainer.train(tiny_config(prepared_aihub_32, tmp_path / "first", **other_mean))
    with pytest.raises(ConfigError, match="was trained with labels 'soft', not 'majority'"):
        trainer.train(tiny_config(prepared_aihub_32, tmp_path / "first", labels="majority"))
    with pytest.raises(ConfigError, match="without torchrun"):
        trainer._train(
            tiny_config(prepared_aihub_32, tmp_path / "svm", model="hog_svm"), Runtime(torch.device("cpu"), world=2)
        )
    assert not (tmp_path / "second").exists()


GRAY = {"color": "gray", "mean": [0.5], "std": [0.5]}
RGB = {"color": "rgb", "mean": [0.5, 0.5, 0.5], "std": [0.25, 0.5, 0.75]}


def test_a_gray_model_starts_an_rgb_run_that_answers_colour_faces_as_it_answered_their_gray_versions(
    small_ferplus: Path, tmp_path_factory: pytest.TempPathFactory, tmp_path: Path
) -> None:
    from maeum.training.trainer import build_model, load_checkpoint, train
    from maeum.training.warm_start import initial_weights

    train(tiny_config(small_ferplus, tmp_path / "gray", epochs=1, input={"size": 48, **GRAY}))
    gray_net, gray_spec, state = load_checkpoint(tmp_path / "gray" / "best.pt")
    colour = prepare_aihub(tmp_path_factory, 48, "rgb")
    cfg = tiny_config(colour, tmp_path / "rgb", init=str(tmp_path / "gray" / "best.pt"), input={"size": 48, **RGB})
    rgb_spec = InputSpec.from_dict(cfg.input)
    rgb_net = build_model(cfg.model, FERPLUS7, rgb_spec)
    rgb_net.load_state_dict(initial_weights(cfg.init, cfg, rgb_net, FERPLUS7, np.zeros((0, 48, 48, 3), np.uint8)))

    from maeum.training.datasets import load_training_data

    faces = load_training_data(colour, rgb_spec, tmp_path / "cache").splits["train"].images  # real colour crops
    assert faces.ndim == 4 and faces.shape[3] == 3
    with torch.no_grad():
        as_gray = gray_net(torch.from_numpy(to_model_input(faces, gray_spec)))
        as_rgb = rgb_net.eval()(torch.from_numpy(to_model_input(faces, rgb_spec)))
    torch.testing.assert_close(as_rgb, as_gray, atol=1e-4, rtol=1e-4)

    # And back: the RGB run's weights start a gray run with the gray model's weights.
    torch.save({**state, "model": rgb_net.state_dict(), "config": cfg.to_dict()}, tmp_path / "rgb.pt")
    back = tiny_config(small_ferplus, tmp_path / "back", init=str(tmp_path / "rgb.pt"), input={"size": 48, **GRAY})
    weights = initial_weights(back.init, back, build_model(back.model, FERPLUS7, gray_spec), FERPLUS7, faces[:0])
    for key, value in gray_net.state_dict().items():
        torch.testing.assert_close(weights[key], value, atol=1e-6, rtol=1e-5)


def test_another_input_size_is_refused_only_where_a_weight_depends_on_it(
    prepared_aihub_32: Path, tmp_path: Path
) -> None:
    from maeum.training.trainer import train

    for model in ("mini_xception", "emotionnet"):
        train(tiny_config(prepared_aihub_32, tmp_path / model, model=model, epochs=1))
    bigger = {"input": {"size": 40, **GRAY}}
    train(tiny_config(prepared_aihub_32, tmp_path / "x40", init=str(tmp_path / "mini_xception" / "best.pt"), **bigger))
    assert (tmp_path / "x40" / "best.pt").is_file()  # convolutions and a global pooling: any size
    emotionnet = tiny_config(
        prepared_aihub_32, tmp_path / "e40", model="emotionnet", init=str(tmp_path / "emotionnet" / "best.pt"), **bigger
    )
    with pytest.raises(ValueError, match=r"head.1.weight depend\(s\) on the input size \(32px there, 40px here\)"):
        train(emotionnet)


def test_a_vision_transformer_starts_at_another_size_with_its_position_embedding_resampled(
    prepared_aihub_32: Path, tmp_path: Path
) -> None:
    from timm.layers import resample_abs_pos_embed

    from maeum.training.trainer import build_model, train
    from maeum.training.warm_start import initial_weights

    deit = "deit_tiny_patch16_224"
    train(tiny_config(prepared_aihub_32, tmp_path / "x32", model=deit, epochs=1))  # a 2x2 patch grid
    first = torch.load(tmp_path / "x32" / "best.pt", map_location="cpu")["model"]
    cfg = tiny_config(
        prepared_aihub_32,
        tmp_path / "x48",
        model=deit,
        init=str(tmp_path / "x32" / "best.pt"),
        input={"size": 48, **GRAY},
    )
    spec = InputSpec.from_dict(cfg.input)
    weights = initial_weights(cfg.init, cfg, build_model(deit, AIHUB7, spec), AIHUB7, np.zeros((0, 48, 48), np.uint8))
    assert first["pos_embed"].shape[1] == 1 + 2 * 2 and weights["pos_embed"].shape[1] == 1 + 3 * 3
    torch.testing.assert_close(weights["pos_embed"][:, :1], first["pos_embed"][:, :1])  # the class token's, as it was
    torch.testing.assert_close(weights["pos_embed"], resample_abs_pos_embed(first["pos_embed"], [3, 3], [2, 2]))
    assert not torch.allclose(weights["pos_embed"][:, 1:5], weights["pos_embed"][:, 5:9])  # patches differ by place
    for key in ("patch_embed.proj.weight", "blocks.0.attn.qkv.weight"):
        torch.testing.assert_close(weights[key], first[key])  # everything else comes over as it was
    train(cfg)
    assert (tmp_path / "x48" / "best.pt").is_file()
