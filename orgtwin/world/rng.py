"""Randomness: every seed is derived, never drawn, and every entity has its own stream.

A run's seed derives from the base seed and the replicate (:func:`derive_seed`), so the
same scenario and base seed give identical results on any machine, in any order, serially
or in worker processes. Inside a run each entity draws from its own generator, keyed by
the run seed and the entity's kind and name (:func:`entity_rng`), so adding a team does
not reshuffle the users' fates, and two runs with the same seed share their randomness
wherever their worlds agree (common random numbers: a comparison measures the change,
not the noise). Nothing in orgtwin uses global random state.
"""

from __future__ import annotations

import zlib

import numpy as np


def derive_seed(base: int, *keys: int) -> int:
    """A 63-bit seed derived from a base seed and integer keys (replicate, point…).

    Example:
        >>> derive_seed(7, 0) == derive_seed(7, 0) != derive_seed(7, 1)
        True
    """
    state = np.random.SeedSequence([int(base), *map(int, keys)]).generate_state(1, np.uint64)
    return int(state[0] >> np.uint64(1))


def entity_rng(seed: int, kind: str, name: str) -> np.random.Generator:
    """The random generator of one entity in a run with ``seed``."""
    key = zlib.crc32(f"{kind}/{name}".encode())
    return np.random.default_rng(np.random.SeedSequence([seed, key]))
