"""SimCLR's published settings, which ``contrastive lint`` compares SimCLR recipes against.

Sources: the paper (Chen et al. 2020, "A Simple Framework for Contrastive Learning of Visual
Representations", arXiv:2002.05709; sections, tables and figures as cited per entry) and the authors'
reference code, google-research/simclr (``tf2/`` and its README's commands), where the paper leaves a
detail out. ImageNet settings apply to recipes on ``image_folder`` data, the CIFAR-10 settings to
``cifar10``; the rest to every SimCLR recipe.

Effects are those the paper measured for the ablation of the same setting (linear evaluation of a
ResNet-50 on ImageNet, usually after 100 epochs), in its own words where a number is not restated.
"""

from __future__ import annotations

from contrastive_core import PublishedSetting

IMAGENET = ("image_folder",)
CIFAR10 = ("cifar10",)

PAPER = "Chen et al. 2020"
REFERENCE = "google-research/simclr"

COLOUR_EFFECT = (
    "Table 3: linear top-1 rises with the colour distortion strength (1/8, 1/4, 1/2, 1) and again with "
    "blur added; supervised models do not gain from it. Fig. 5: crop + colour is the strongest pair of "
    "augmentations"
)
BATCH_EFFECT = (
    "Fig. 9: larger batches are clearly better at 100-400 epochs (256 is several points below 4096); "
    "the gap shrinks with longer training"
)
EPOCHS_EFFECT = "Fig. 9: accuracy keeps rising with longer training (100 to 800 epochs) at every batch size"
HEAD_EFFECT = (
    "Sec. 4.2, Fig. 8: a nonlinear projection head beats a linear one by about 3% and no head by more "
    "than 10% (linear top-1 of the representation before the head)"
)

SIMCLR_PUBLISHED_SETTINGS: tuple[PublishedSetting, ...] = (
    # --- objective ---------------------------------------------------------------------------------
    PublishedSetting(
        "loss.type",
        "nt_xent",
        f"{PAPER}, Sec. 2.1, Eq. 1",
        "Sec. 5.1, Table 4: NT-Xent beats NT-Logistic and the margin triplet loss, even with semi-hard "
        "negative mining",
    ),
    PublishedSetting(
        "loss.temperature",
        0.1,
        f"{PAPER}, Sec. 5.1 / Appendix B.1",
        "Table 5: with l2-normalised projections, linear top-1 is best at 0.1 of 0.05, 0.1, 0.5 and 1",
        IMAGENET,
    ),
    PublishedSetting(
        "loss.temperature",
        0.5,
        f"{PAPER}, Appendix B.9; {REFERENCE} README, CIFAR-10 command",
        "Appendix B.9: the best temperature on CIFAR-10 depends on batch size and epochs",
        CIFAR10,
    ),
    PublishedSetting(
        "loss.reduction",
        "sum_of_views",
        f"{REFERENCE} tf2/objective.py (reduce_mean(loss_a + loss_b))",
        "twice the per-anchor mean: under LARS the BatchNorm and bias parameters train twice as fast",
    ),
    # --- networks -------------------------------------------------------------------------------------
    PublishedSetting(
        "model.head.type", "mlp", f"{PAPER}, Sec. 2.1 (g: MLP with one hidden layer)", HEAD_EFFECT
    ),
    PublishedSetting("model.head.num_layers", 2, f"{PAPER}, Sec. 2.1 (one hidden layer, ReLU)", HEAD_EFFECT),
    PublishedSetting("model.head.hidden_dim", 2048, f"{PAPER}, Sec. 2.1 / Appendix B.1 (ResNet-50's 2048)"),
    PublishedSetting(
        "model.head.out_dim",
        128,
        f"{PAPER}, Appendix B.1",
        "Fig. 8: with the nonlinear head the output dimension matters little (32 to 2048)",
    ),
    PublishedSetting(
        "model.encoder.zero_init_residual",
        True,
        f"{REFERENCE} tf2/resnet.py (BatchNormRelu(init_zero=True) closing every block)",
    ),
    PublishedSetting(
        "stages[pretrain].global_batchnorm",
        True,
        f"{PAPER}, Sec. 2.2 (global BN: mean and variance over all devices)",
        "Sec. 2.2: per-device BN lets the model find a shortcut that improves the contrastive accuracy "
        "but not the representation",
    ),
    # --- optimisation ---------------------------------------------------------------------------------
    PublishedSetting(
        "optimizer.type",
        "lars",
        f"{PAPER}, Sec. 2.2",
        "Sec. 2.2: SGD/momentum with a linear lr scaling can be unstable at large batches",
    ),
    PublishedSetting("optimizer.lr", 0.3, f"{PAPER}, Sec. 2.2 (lr = 0.3 x batch / 256)", "", IMAGENET),
    PublishedSetting(
        "optimizer.lr", 1.0, f"{REFERENCE} README, CIFAR-10 command (--learning_rate=1.0)", "", CIFAR10
    ),
    PublishedSetting(
        "optimizer.lr_scaling", "linear", f"{PAPER}, Sec. 2.2; Appendix B.1 compares sqrt scaling"
    ),
    PublishedSetting("optimizer.momentum", 0.9, f"{PAPER}, Sec. 2.2 / Appendix B.1"),
    PublishedSetting("optimizer.weight_decay", 1e-6, f"{PAPER}, Sec. 2.2", "", IMAGENET),
    PublishedSetting(
        "optimizer.weight_decay",
        1e-4,
        f"{REFERENCE} README, CIFAR-10 command (--weight_decay=1e-4)",
        "",
        CIFAR10,
    ),
    PublishedSetting("optimizer.eta", 0.001, f"{REFERENCE} tf2/lars_optimizer.py (eeta=0.001)"),
    PublishedSetting(
        "optimizer.exclude",
        "bn_and_bias",
        f"{REFERENCE} tf2/run.py (exclude_from_weight_decay: batch_normalization, bias)",
    ),
    PublishedSetting(
        "optimizer.momentum_form",
        "reference",
        f"{REFERENCE} tf2/lars_optimizer.py (v = m v + lr trust g)",
        "the other form moves up to 1.56x further during a 100-step warmup (docs/components/optimizers.md)",
    ),
    PublishedSetting(
        "scheduler.type", "warmup_cosine", f"{PAPER}, Sec. 2.2 (linear warmup, then cosine decay)"
    ),
    PublishedSetting("scheduler.warmup_epochs", 10.0, f"{PAPER}, Sec. 2.2"),
    PublishedSetting("stages[pretrain].batch_size", 4096, f"{PAPER}, Sec. 2.2", BATCH_EFFECT, IMAGENET),
    PublishedSetting(
        "stages[pretrain].epochs",
        100,
        f"{PAPER}, Sec. 2.2 (ablations; Table 6 trains 1000)",
        EPOCHS_EFFECT,
        IMAGENET,
    ),
    PublishedSetting(
        "stages[pretrain].batch_size", 512, f"{REFERENCE} README, CIFAR-10 command", BATCH_EFFECT, CIFAR10
    ),
    PublishedSetting(
        "stages[pretrain].epochs", 1000, f"{REFERENCE} README, CIFAR-10 command", EPOCHS_EFFECT, CIFAR10
    ),
    # --- augmentations --------------------------------------------------------------------------------
    PublishedSetting(
        "augmentations[random_resized_crop].scale",
        (0.08, 1.0),
        f"{PAPER}, Appendix A; {REFERENCE} tf2/data_util.py (area_range)",
        "Fig. 5: cropping is part of every strong augmentation pair",
    ),
    PublishedSetting(
        "augmentations[random_resized_crop].ratio",
        (3 / 4, 4 / 3),
        f"{PAPER}, Appendix A; {REFERENCE} tf2/data_util.py (aspect_ratio_range)",
    ),
    PublishedSetting(
        "augmentations[random_resized_crop].resample",
        "bicubic",
        f"{REFERENCE} tf2/data_util.py (crop_and_resize: tf.image.resize(..., BICUBIC))",
    ),
    PublishedSetting("augmentations[horizontal_flip]", True, f"{PAPER}, Appendix A (random crop with flip)"),
    PublishedSetting(
        "augmentations[horizontal_flip].p", 0.5, f"{REFERENCE} tf2/data_util.py (random_flip_left_right)"
    ),
    PublishedSetting("augmentations[color_jitter]", True, f"{PAPER}, Appendix A", COLOUR_EFFECT),
    PublishedSetting(
        "augmentations[color_jitter].strength", 1.0, f"{PAPER}, Appendix A (s = 1)", COLOUR_EFFECT, IMAGENET
    ),
    PublishedSetting(
        "augmentations[color_jitter].strength",
        0.5,
        f"{PAPER}, Appendix B.9 (s = 0.5)",
        COLOUR_EFFECT,
        CIFAR10,
    ),
    PublishedSetting("augmentations[color_jitter].p", 0.8, f"{PAPER}, Appendix A (pseudo-code)"),
    PublishedSetting("augmentations[random_grayscale]", True, f"{PAPER}, Appendix A (colour drop)"),
    PublishedSetting("augmentations[random_grayscale].p", 0.2, f"{PAPER}, Appendix A (pseudo-code)"),
    PublishedSetting(
        "augmentations[gaussian_blur]",
        True,
        f"{PAPER}, Appendix A",
        "Table 3: adding blur to the strongest colour distortion raises linear top-1 further",
        IMAGENET,
    ),
    PublishedSetting("augmentations[gaussian_blur].p", 0.5, f"{PAPER}, Appendix A", "", IMAGENET),
    PublishedSetting("augmentations[gaussian_blur].sigma", (0.1, 2.0), f"{PAPER}, Appendix A", "", IMAGENET),
    PublishedSetting(
        "augmentations[gaussian_blur].kernel_fraction",
        0.1,
        f"{PAPER}, Appendix A (10% of the side)",
        "",
        IMAGENET,
    ),
    PublishedSetting(
        "augmentations[gaussian_blur]",
        False,
        f"{PAPER}, Appendix B.9 (no blur on 32 px images); {REFERENCE} README (--use_blur=False)",
        "",
        CIFAR10,
    ),
    PublishedSetting("data.image_size", 224, f"{PAPER}, Appendix A (224 x 224 crops)", "", IMAGENET),
    PublishedSetting(
        "data.train_images",
        "photo",
        f"{PAPER}, Appendix A; {REFERENCE} data_util.py (distorted_bounding_box_crop of the whole image)",
        "",
        IMAGENET,
    ),
    PublishedSetting(
        "data.eval_crop_fraction",
        0.875,
        f"{REFERENCE} data_util.py (preprocess_for_eval, CROP_PROPORTION = 0.875)",
        "",
        IMAGENET,
    ),
    # --- linear evaluation ----------------------------------------------------------------------------
    PublishedSetting(
        "stages[linear_eval].protocol",
        "augmented",
        f"{PAPER}, Appendix B.5; {REFERENCE} README, linear-evaluation commands",
        "training on fixed features instead of random crops and flips usually reports a lower accuracy",
    ),
    PublishedSetting(
        "stages[linear_eval].momentum", 0.9, f"{REFERENCE} tf2/model.py (Nesterov momentum 0.9)"
    ),
    PublishedSetting("stages[linear_eval].lr", 0.1, f"{REFERENCE} README, linear-evaluation commands"),
    PublishedSetting(
        "stages[linear_eval].lr_scaling", "linear", f"{REFERENCE} tf2/run.py (learning_rate_scaling)"
    ),
    PublishedSetting(
        "stages[linear_eval].epochs", 90, f"{REFERENCE} README, ImageNet linear evaluation", "", IMAGENET
    ),
    PublishedSetting(
        "stages[linear_eval].batch_size",
        4096,
        f"{REFERENCE} README, ImageNet linear evaluation",
        "",
        IMAGENET,
    ),
    PublishedSetting(
        "stages[linear_eval].weight_decay",
        5e-7,
        f"{REFERENCE} README, ImageNet linear evaluation (1e-6 x tf.nn.l2_loss = 5e-7 ||W||^2)",
        "",
        IMAGENET,
    ),
    PublishedSetting(
        "stages[linear_eval].epochs", 100, f"{REFERENCE} README, CIFAR-10 linear evaluation", "", CIFAR10
    ),
    PublishedSetting(
        "stages[linear_eval].batch_size", 512, f"{REFERENCE} README, CIFAR-10 linear evaluation", "", CIFAR10
    ),
    PublishedSetting(
        "stages[linear_eval].weight_decay",
        0.0,
        f"{REFERENCE} README, CIFAR-10 linear evaluation",
        "",
        CIFAR10,
    ),
)
