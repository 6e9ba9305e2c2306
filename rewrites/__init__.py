"""gancc's rewrite catalogue: one rewrite (family) per file, registered with @rewrite.

Files here are discovered automatically; there is no list to update. See README.md in this
folder for how to add one.
"""
