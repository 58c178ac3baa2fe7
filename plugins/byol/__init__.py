"""BYOL (Grill et al. 2020, "Bootstrap Your Own Latent", arXiv:2006.07733) as a method plugin."""
