"""The projection's error."""


class ProjectionError(ValueError):
    """An unusable projection input (a target image, a model, a saved projection); the message names it."""
