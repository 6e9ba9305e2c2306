"""`gancc validate`: a compiled model checked over a whole data set, on Ray.

- `samples`: what a sample is (a file of the recipe's data, a `gancc prep` bin, or a seeded
  draw) and how a worker turns one into the graph's inputs; the driver holds only the list
  of sample descriptors, never their data.
- `evaluator`: one worker's loaded state (onnxruntime sessions, the reference module) and
  the figures of one sample.
- `store`: per-sample results, content-addressed (graph digest, sample, metric set).
- `summary`: per-figure statistics over the rows and the spec's `require` lines on them
  (also what `gancc compare` reports).
- `engine`: the Ray side: local instance or cluster, one actor per worker, streaming.
- `page`: validation.html.
"""
