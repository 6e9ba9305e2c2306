"""Stage implementations: each module does one step of a build (gancc/build/pipeline.py lists the steps and calls them)."""
