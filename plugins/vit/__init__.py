"""Vision Transformer encoders (Dosovitskiy et al. 2021, "An Image is Worth 16x16 Words", arXiv:2010.11929).

Sized and initialised as DINO trains them (Caron et al. 2021, "Emerging Properties in Self-Supervised
Vision Transformers", arXiv:2104.14294): ViT-Ti/S/B, pre-norm blocks, stochastic depth, positional
embeddings resized to each input's patch grid.
"""
