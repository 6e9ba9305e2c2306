"""gancc: a declarative graph-rewrite compiler frontend taking GAN generators to Ascend NPUs."""

__version__ = "0.1.0"
