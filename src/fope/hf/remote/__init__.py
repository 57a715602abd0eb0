"""Remote code copied next to every saved HF model (self-contained: torch + transformers only, never fope)."""
