"""rnnkit: recurrent neural networks from the equations up, with hand-written BPTT."""

__version__ = "0.1.0"
