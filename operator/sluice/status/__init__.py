"""Pure status derivation: conditions, phase transitions, queue statistics."""
