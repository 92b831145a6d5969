"""What is computed from a model through the engine: lens, attribution, ablation, MLP and neurons,
information flow, patching, head scores, embeddings, sampling and generation, the lesson's checks,
prompt sets (where a set of prompts comes from, and its checks).
Each module names what it reads or writes; the engine (model/engine/) runs the passes."""
