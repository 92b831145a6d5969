"""What is computed from a model through the engine: lens, attribution, ablation, MLP and neurons,
information flow, patching, head scores, embeddings, sampling and generation, the lesson's checks,
and prompt sets (sets/: one view over many prompts, with the spread behind each mean).
Each module names what it reads or writes; the engine (model/engine/) runs the passes."""
