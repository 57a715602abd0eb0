"""Mechanism analyses of the FoPE paper (docs/analysis.md, Table 2) and a spectrum-damage measure of our own.

Every analysis is a function that returns plain data (JSON-ready dicts); `fope analyze ...` (fope.analysis.cli)
prints, saves JSON and draws PNGs. See docs/analysis.md.

    toy.spectrum_toy(ToyConfig())                  Fig. 3: ground truth vs RoPE vs FoPE scores, with errors
    decay.decay_curves(head_dim=128)              Fig. 8: long-term decay needs a nonzero mean
    activations.activation_stats(model, ...)      Fig. 7: |mean q|, |mean k| per layer x dim, incomplete cycles
    damage.spectrum_damage(signal, freqs)         share of a dimension's positional energy off its frequency
    far.far_attention_report(model, tokens, ...)  perplexity beyond L with the scores of far keys changed
    far_tables.report_section(far, L)             every Markdown table of the far-attention results
    induction.induction_report(model, ...)        repeated random tokens: can the model copy from its context?

Models are read by fope.eval's loader (capture.load_for_analysis, far.far_attention_of).
"""

from __future__ import annotations

__all__ = ["activations", "capture", "damage", "decay", "far", "far_tables", "induction", "toy"]
