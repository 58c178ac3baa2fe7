"""An example third-party plugin for contrastive: one loss and one augmentation."""
