"""VICReg (Bardes, Ponce, LeCun 2022, arXiv:2105.04906) as a method plugin."""
