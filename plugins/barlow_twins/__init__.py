"""Barlow Twins (Zbontar et al. 2021, arXiv:2103.03230) as a method plugin."""
