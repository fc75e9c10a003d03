"""Input/output: safetensors arrays, atomic writes, checkpoints and RNG state (never pickle)."""

from rnnkit.io.atomic import atomic_write, atomic_write_bytes
from rnnkit.io.checkpoint import (
    FORMAT_VERSION,
    load_checkpoint,
    load_checkpoint_meta,
    save_checkpoint,
)
from rnnkit.io.rng import rng_from_state, rng_state
from rnnkit.io.safetensors import (
    decode_safetensors,
    encode_safetensors,
    load_arrays,
    load_safetensors,
    save_arrays,
)

__all__ = [
    "FORMAT_VERSION",
    "atomic_write",
    "atomic_write_bytes",
    "decode_safetensors",
    "encode_safetensors",
    "load_arrays",
    "load_checkpoint",
    "load_checkpoint_meta",
    "load_safetensors",
    "rng_from_state",
    "rng_state",
    "save_arrays",
    "save_checkpoint",
]
