"""The identities stored runs already carry, pinned: the hash a sweep finds each job's earlier
attempt by (config_hash) and the key `cnnbench compare` groups repeated seeds by. A change to
either (a key moved in or out, a default changed) would make sweeps run again from scratch and
split old runs from new ones in compare, so each digest here is one that runs already stored
carry; a change to the table of run options must leave them as they are."""
from __future__ import annotations

import hashlib

import pytest
import yaml
from omegaconf import OmegaConf, open_dict

from cnnbench.commands.compare.identity import identity, key
from cnnbench.settings.config_files import compose_config
from cnnbench.settings.identity import config_hash

DEFAULT_HASH = "93b2ffb80f6176f11c926ee3fbe18b608327ae8a023361d7326b1fd4b9b86a62"
KERAS_LIKE = ["dataset=synthetic", "scheduler=onecycle", "augmentation=keras_like"]
SPEED = ["trainer.device=cpu", "trainer.compile=true", "trainer.num_workers=0",
         "dataset.root=/x", "trainer.progress=false", "trainer.cuda_graph=false",
         "trainer.data_on_device=false", "trainer.eval_batch_size=7"]

HASHES = {
    "default": ([], DEFAULT_HASH),
    "group choices": (["model=mlp", "dataset=fashion_mnist", "optimizer=sgd", "scheduler=none"],
                      "0b1e2cfa2a5f9e884f337bff2496d905231f439599dd7c480fcdaf53ac4e80f4"),
    "an interpolation and a moved class": (
        KERAS_LIKE, "c1b5e075e9c3fd7f07be5ae304902cd5749242452cf306935795092aa71420fa"),
    "timm": (["model=timm", "dataset=cifar10", "optimizer=adamw", "scheduler=plateau",
              "augmentation=cutout"],
             "02681eb01f89b7c0536d73619cd1d231910bf57c8b91dd2a4ada8b5d4f5638a8"),
    "a preset": (["experiment=lenet_mnist_keras"],
                 "a0480f3d00075f5e281da2ea92968e88cde09e3d119f22f50f693026c9b2bad7"),
    "a folder of images": (["dataset=imagefolder", "dataset.path=/data/photos",
                            "evaluation.shifts=[]"],
                           "915df25389259a16da5d014432dfa659e36f6a4c3b71cb273e6197681e06fb71"),
    "keys added later, at their default": (
        ["optimizer.backbone_lr_scale=1.0", "trainer.freeze_backbone_epochs=0"], DEFAULT_HASH),
    "keys added later, changed": (
        ["optimizer.backbone_lr_scale=0.1", "trainer.freeze_backbone_epochs=2"],
        "91d8ba7ba05ae3358a6d221ed269389f916abc68ad23218334606b2dbd1bd282"),
    "where and how fast it runs": (SPEED, DEFAULT_HASH),
    "a +key, epochs and seed": (["+trainer.extra=3", "trainer.epochs=3", "trainer.seed=1"],
                                "9df457f1f4601d717d321004b3e800e6b2de512be240bed4e93aea9753ec2760"),
}


@pytest.mark.parametrize("overrides,digest", HASHES.values(), ids=list(HASHES))
def test_config_hash_is_the_one_stored_runs_carry(overrides, digest):
    assert config_hash(compose_config(overrides)) == digest


def test_a_config_stored_before_the_added_keys_keeps_its_identity():
    cfg = compose_config([])
    with open_dict(cfg):
        del cfg.optimizer["backbone_lr_scale"]
        del cfg.trainer["freeze_backbone_epochs"]
    assert config_hash(cfg) == DEFAULT_HASH


def test_a_config_stored_before_its_augmentation_class_moved_keeps_its_identity():
    cfg = compose_config(KERAS_LIKE)
    assert cfg.augmentation._target_ == "cnnbench.engine.augment.BatchAugment"
    cfg.augmentation._target_ = "cnnbench.augment.BatchAugment"
    assert config_hash(cfg) == HASHES["an interpolation and a moved class"][1]


CHOICES = {"dataset": "mnist", "model": "lenet", "optimizer": "adam", "scheduler": "cosine",
           "augmentation": "none", "trainer": "default", "evaluation": "default",
           "experiment": None, "hydra/launcher": "cnnbench_sequential"}
OPTIONS = {"model": "lenet", "dataset": "mnist", "optimizer": "adam", "lr": 0.001,
           "scheduler": "cosine", "augmentation": "none", "batch_size": 128, "epochs": 10,
           "seed": 42}
COMPARE_DEFAULT = "85dac119065126fb8742cccb5e3ed6b8534776f49bf5361aa70315bf1bef3c09"
COMPARED = {
    "default": ([], COMPARE_DEFAULT),
    "seed, device, bars, data folder, display and checkpoint files": (
        ["trainer.seed=7", "trainer.device=cpu", "trainer.progress=false", "dataset.root=/x",
         "evaluation.plots=false", "trainer.checkpoint.save_best=false",
         "dataset.download=true"], COMPARE_DEFAULT),
    "compile, which compare counts": (
        ["trainer.compile=true"],
        "951eb979ad85b94fe54febdcf9fa29b20e7032eada23861ed470bf4c0bf21dfd"),
    "keys added later, at their default": (
        ["optimizer.backbone_lr_scale=1", "trainer.freeze_backbone_epochs=0"], COMPARE_DEFAULT),
    "a key added later, changed": (
        ["optimizer.backbone_lr_scale=0.5"],
        "1c63101bbe62a55b1a0c3d1d5fb93f35c2360b920d70f07e29a5b3baff04935f"),
    "a preset": (["experiment=lenet_mnist_keras"],
                 "7eaade0f08e3a331139f8d6eae7d016d006df62de06cb1f0f5af5b839b20c2cb"),
}


@pytest.mark.parametrize("overrides,digest", COMPARED.values(), ids=list(COMPARED))
def test_compare_groups_a_stored_config_as_it_did(overrides, digest):
    stored = yaml.safe_load(OmegaConf.to_yaml(compose_config(overrides)))  # as .hydra/ holds it
    ident = identity(stored, CHOICES, OPTIONS)
    assert hashlib.sha256(key(ident).encode()).hexdigest() == digest
