"""DINO (Caron et al. 2021, "Emerging Properties in Self-Supervised Vision Transformers", arXiv:2104.14294)
as a method plugin: a student and an EMA teacher with DINO's projection head, a centred and sharpened
teacher, and the cross-entropy from every global view to every other view."""
