"""Using what a recipe trained: packed model folders (pack.py), speech to text (speech2text.py) and spoken language
understanding (understand.py) from audio.

`from toolkit.inference import Speech2Text, Understand` imports the model code only when a name is used.
"""

__all__ = ["Speech2Text", "Understand"]


def __getattr__(name: str):
    if name == "Speech2Text":
        from toolkit.inference.speech2text import Speech2Text

        return Speech2Text
    if name == "Understand":
        from toolkit.inference.understand import Understand

        return Understand
    raise AttributeError(f"module 'toolkit.inference' has no attribute {name!r}")
