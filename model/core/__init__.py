"""The plain types every layer shares: a capture, the model's description, errors, settings and
token text. No torch here: viz/ and pages/ import these without loading a model.
"""
