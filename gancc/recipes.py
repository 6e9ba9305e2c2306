"""The recipes (model families) of gancc's data commands: prep, post and compare.

Only the names, importable without numpy, onnx or the spec parser: every `gancc` command
builds the whole argument parser, and `--recipe`'s choices come from here
(gancc.data_io has what each recipe does).
"""

RECIPES = ("cyclegan", "stargan", "pix2pixhd", "gan", "bigbigan")
