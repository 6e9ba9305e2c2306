"""The build: a spec's models through the stages of gancc/build/pipeline.py."""

from gancc.build.options import BuildOptions
from gancc.build.pipeline import STAGES, BuildResult, build, build_model

__all__ = ["STAGES", "BuildOptions", "BuildResult", "build", "build_model"]
