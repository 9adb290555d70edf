"""Using what a recipe trained: packed model folders (pack.py) and inference from audio (speech2text.py).

`from toolkit.inference import Speech2Text` imports the model code only when the name is used.
"""

__all__ = ["Speech2Text"]


def __getattr__(name: str):
    if name == "Speech2Text":
        from toolkit.inference.speech2text import Speech2Text

        return Speech2Text
    raise AttributeError(f"module 'toolkit.inference' has no attribute {name!r}")
