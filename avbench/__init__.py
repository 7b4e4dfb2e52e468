"""avbench: trustworthy numbers for audio-visual language models on the standard AV benchmarks."""

__version__ = "0.1.0"
