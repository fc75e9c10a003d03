"""Pure functions on arrays: the equations of the seed, forward and backward."""
