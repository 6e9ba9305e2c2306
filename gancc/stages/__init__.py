"""The build stages, each a small module the pipeline calls in order (gancc/pipeline.py)."""
