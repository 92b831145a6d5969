"""Errors a user can act on: each message says what happened and what to do."""


class XrayError(Exception):
    """Base for errors shown to the user as a message, never as a traceback."""


class ModelLoadError(XrayError):
    """A model could not be loaded (unknown id, offline, broken files, not a causal LM...)."""


class UnsupportedModelError(ModelLoadError):
    """The model loaded but its layout cannot be hooked (no decoder block list, no attention...)."""


class PromptError(XrayError):
    """The prompt cannot be captured as typed (empty, or longer than the token limit)."""


class CaptureError(XrayError):
    """The forward pass failed (e.g. out of memory)."""
