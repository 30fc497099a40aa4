"""The simple baselines every model is reported beside: copy-source, the translation memory, lead-1 and
the fuzzy-match hybrid (seq2seq); mean, last observation carried forward and linear interpolation
(series). Mask polarity: True = observed."""
