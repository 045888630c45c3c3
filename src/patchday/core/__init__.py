"""The pure domain of patchday: no Django, no I/O, no clock reads, no randomness."""
