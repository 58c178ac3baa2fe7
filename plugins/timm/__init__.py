"""timm backbones as encoders (Wightman, "PyTorch Image Models", github.com/huggingface/pytorch-image-models).

Any of timm's architectures by name (``resnet50``, ``vit_small_patch16_224``, ``convnext_tiny``, ...),
always at random initialisation (weights come from the encoder's ``init`` file, never a download),
without a classifier: h is timm's pooled features. Registered only where timm is installed, the
optional extra ``pip install 'contrastive[timm]'``.
"""
