"""The engine: loading a model, finding its parts, and the one door every pass goes through
(`language_model.LanguageModel.forward`, with `patch_sites` naming where a pass may be read or
written), plus recording, batching, caches and threads. Analyses build on it; they never hook
modules or take the model's lock themselves.
"""
