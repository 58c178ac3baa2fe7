"""SwAV (Caron et al. 2020, "Unsupervised Learning of Visual Features by Contrasting Cluster Assignments",
arXiv:2006.09882) as a method plugin: prototypes, Sinkhorn-Knopp codes over the global batch, swapped
prediction over multi-crop views, and the optional queue of earlier embeddings."""
