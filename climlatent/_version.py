"""Version of the climlatent package."""

__version__ = "0.1.0"
