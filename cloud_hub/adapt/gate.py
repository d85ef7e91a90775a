"""The shadow gate of an adapted model's campaign, and why it differs from a fleet rollout's.

A fleet rollout promotes a candidate that *agrees* with the model it replaces (min_agreement 0.9): a
new generic version should see what the old one saw. An adapted model is built to *disagree* with the
old one on this camera — the old model is the thing that was wrong here — and its accuracy was already
judged on the hub, against the teacher, on the later 40 % of the captured frames it was not trained on.
So on the device the shadow phase checks only what the hub cannot see:

- ``min_agreement`` 0: agreement with the old model is reported (the job shows it) but never gates.
- ``max_latency_ratio`` 1.5: the same architecture fine-tuned should cost the same per frame; 1.5x
  leaves room for a busy device's noise while still catching a model that would slow the camera down.
- ``min_frames`` 50 sampled frames: at the agent's default sample rate (1 in 5) and 10 detections/s
  that is under half a minute of real frames, enough for stable latency medians and to see errors.
- ``max_candidate_errors`` 0: a candidate that raised on any real frame is not promoted.
"""

from __future__ import annotations

ADAPT_GATE: dict[str, float] = {
    "min_agreement": 0.0,
    "max_latency_ratio": 1.5,
    "min_frames": 50,
    "max_candidate_errors": 0,
}
