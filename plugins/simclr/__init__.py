"""SimCLR (Chen et al., 2020, arXiv:2002.05709) as a plugin set: augmentations, encoders, head, loss, optimizers."""
