"""MoCo v2 (Chen et al. 2020, arXiv:2003.04297) and MoCo v3 (Chen, Xie, He 2021, arXiv:2104.02057) as method plugins."""
