"""Multi-object tracker: constant-velocity Kalman filter per object, IoU or likelihood + colour association.

SORT-style. Tiny int8 detectors (FOMO especially) give coarse, jittery boxes and miss objects for a
frame or two, so association falls back to centroid distance when boxes do not overlap, a track must
be seen ``min_hits`` times before it counts (no event from one false positive), and survives
``max_age`` missed inferences before it ends (no second event after a short miss) — unless it was last
seen at the frame border moving out: then it has left, and coasting would only hand its id to the next
object that enters there. Colours (``appearance``) add to the cost, as in DeepSORT, and keep a coasting
track from reaching far onto an object that looks different: the usual way one object's track jumps
onto another after an occlusion. They also let an object hidden longer than ``max_age`` be recognised:
a lost track waits ``max_lost`` more inferences, unseen by the rules, for a detection of its colours,
and a new track confirmed where a lost one was expected, looking like it, is that object (a twin) and
continues the old track instead of counting it twice. Two rules for a detector that sees people side by
side as one blob: a track that walked out to the frame border and turns back in has left (it met someone
coming in there), and an undetected track predicted inside a look-alike's box is hidden in that group.
Coordinates are normalised (0..1); time is in seconds, so velocity is independent of the frame rate.
"""

from __future__ import annotations

import itertools
import math
from collections import Counter
from dataclasses import dataclass, field

import numpy as np

from edge_agent import appearance
from edge_agent.config import TrackerConfig
from model_runtime import Detection

Box = tuple[float, float, float, float]
LABEL_SWITCH_NLL = 10.0  # distance-match cost of a label change, per unit of penalty (≈ 4.5 sigma)
APPEARANCE_FREE_D2 = 16.0  # within 4 sigma of its prediction a coasting track needs no colour match
# A track missed once may just have lost one frame's detection to a neighbour: twins need two misses.
TWIN_MIN_MISSES = 2
# A track that walked out to the frame border (at least TURN_TRAVEL of the frame) and within TURN_WINDOW_S
# moves back in faster than TURN_SPEED (frame fractions / s) has left; another object came in there.
TURN_TRAVEL = 0.1
TURN_WINDOW_S = 1.5
TURN_SPEED = 0.04


def iou(a: Box, b: Box) -> float:
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


class Kalman:
    """State [cx, cy, vx, vy]; measurement [cx, cy]. Process noise grows with the time step.

    x and y are independent axes with the same noise and the same start, so their 2x2 covariances
    [[pos, cross], [cross, vel]] stay identical: one set of scalars serves both. Plain floats, because
    numpy's per-call overhead on 4x4 matrices was most of the tracker's time (0.1 ms per track per frame).
    """

    def __init__(self, cx: float, cy: float, accel: float = 0.5, measure: float = 0.01):
        self.x = [float(cx), float(cy), 0.0, 0.0]
        self.p_pos, self.p_cross, self.p_vel = measure**2, 0.0, 0.25
        self.q2 = accel**2
        self.r = measure**2

    def predict(self, dt: float) -> None:
        if dt <= 0:
            return
        x, q2 = self.x, self.q2
        x[0] += x[2] * dt
        x[1] += x[3] * dt
        pos, cross, vel = self.p_pos, self.p_cross, self.p_vel
        self.p_pos = pos + 2 * dt * cross + dt * dt * vel + q2 * dt**4 / 4
        self.p_cross = cross + dt * vel + q2 * dt**3 / 2
        self.p_vel = vel + q2 * dt * dt

    def innovation_var(self) -> float:
        """Variance of the next measurement around the prediction (per axis): how far it may land."""
        return self.p_pos + self.r

    def correct(self, cx: float, cy: float) -> None:
        s = self.p_pos + self.r
        k_pos, k_vel = self.p_pos / s, self.p_cross / s
        x = self.x
        ex, ey = cx - x[0], cy - x[1]
        x[0] += k_pos * ex
        x[1] += k_pos * ey
        x[2] += k_vel * ex
        x[3] += k_vel * ey
        self.p_vel -= k_vel * self.p_cross
        self.p_pos *= 1 - k_pos
        self.p_cross *= 1 - k_pos


@dataclass
class Track:
    id: int
    box: Box
    score: float
    first_ts: float
    last_ts: float
    kf: Kalman
    hits: int = 1
    misses: int = 0
    confirmed: bool = False
    labels: Counter = field(default_factory=Counter)
    best_score: float = 0.0
    state_ts: float = 0.0  # time the Kalman state refers to
    left_frame: bool = False  # ended at the frame border moving out (not lost inside the view)
    first_box: Box | None = None  # where it was first detected (rules start from there on confirmation)
    feature: np.ndarray | None = None  # colour histogram (appearance.describe), running average
    lost: bool = False  # missed longer than max_age: waits for a look-alike detection, unseen by the rules
    border: tuple[int, int, float] | None = None  # (axis, outward sign, ts) it last reached the border
    covered_ts: float = 0.0  # last time it was unseen but predicted inside a look-alike's box (a group)

    @property
    def last_known_ts(self) -> float:
        """Last seen, or if later, last known hidden in a group of its kind (``Tracker._cover``)."""
        return max(self.last_ts, self.covered_ts)

    @property
    def label(self) -> str:
        return self.labels.most_common(1)[0][0]

    @property
    def center(self) -> tuple[float, float]:
        return float(self.kf.x[0]), float(self.kf.x[1])

    @property
    def velocity(self) -> tuple[float, float]:
        return float(self.kf.x[2]), float(self.kf.x[3])

    def box_at(self, ts: float, margin: float = 0.0) -> Box:
        """Where the motion model puts the box at ``ts`` (no filter update), grown by ``margin``."""
        dt = ts - self.state_ts
        (cx, cy), (vx, vy) = self.center, self.velocity
        cx, cy = cx + vx * dt, cy + vy * dt
        w, h = (self.box[2] - self.box[0]) / 2 + margin, (self.box[3] - self.box[1]) / 2 + margin
        return (cx - w, cy - h, cx + w, cy + h)

    def take_over(self, young: Track) -> None:
        """Continue as ``young``, a new track of this same object (``young`` never reported anything)."""
        self.kf, self.box, self.score, self.last_ts = young.kf, young.box, young.score, young.last_ts
        self.state_ts = young.state_ts
        self.best_score = max(self.best_score, young.best_score)
        self.labels.update(young.labels)
        self.feature = appearance.blend(self.feature, young.feature, 0.5)
        self.hits += young.hits
        self.misses = 0
        self.lost = False

    def predicted_box(self) -> Box:
        cx, cy = self.center
        w, h = self.box[2] - self.box[0], self.box[3] - self.box[1]
        return (cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2)


@dataclass
class TrackUpdate:
    active: list[Track]  # confirmed tracks, after this update
    started: list[Track]  # confirmed in this update
    ended: list[Track]  # confirmed tracks that were dropped in this update


class Tracker:
    def __init__(self, config: TrackerConfig):
        self.config = config
        self.tracks: list[Track] = []
        self._ids = itertools.count(1)
        self._last_ts: float | None = None
        self._step = float("inf")  # shortest time between two inferences seen: the detect period
        self._skip_slack = 0.0

    def _cost(
        self, track: Track, det: Detection, label: str, feature: np.ndarray | None = None
    ) -> float | None:
        """Lower is better; None = no match. Labels may differ (detectors flicker), at a price."""
        penalty = 0.0 if det.label == label else 0.5
        settled = self.config.label_lock and track.labels.total() >= self.config.label_lock
        if penalty and settled and not track.labels[det.label]:
            return None  # a track that was a truck twenty times does not become the person beside it
        if self.config.match == "iou":
            overlap = iou(track.predicted_box(), det.box)
            return 1.0 - overlap + penalty if overlap >= self.config.iou_threshold else None
        # Centre distance to the *predicted* position, in units of the filter's own uncertainty: two
        # people passing each other keep their ids because each prediction runs ahead in its own
        # direction, and a steady track claims only what lands where it is expected while a coasting
        # or young one may reach further. Cost = the detection's negative log-likelihood under the
        # track's prediction (Mahalanobis distance + log spread, so a wide gate is no advantage).
        cx, cy = track.center
        dx, dy = (det.box[0] + det.box[2]) / 2 - cx, (det.box[1] + det.box[3]) / 2 - cy
        # Inferences skipped by the motion gate add their slack (a distance) as a 3-sigma uncertainty.
        spread = track.kf.innovation_var() + (self._skip_slack / 3) ** 2
        d2 = (dx * dx + dy * dy) / spread
        cap = self.config.max_distance * (1.0 + 0.5 * track.misses) + self._skip_slack
        if d2 > self.config.gate or math.hypot(dx, dy) > cap:
            return None
        look = 0.0  # colour distance, 0..1
        if self.config.appearance_weight > 0 and feature is not None and track.feature is not None:
            look = appearance.distance(track.feature, feature)
            # A coasting track reaching beyond where it is expected (4 sigma) is how one object's track
            # jumps onto another after an occlusion: there it must also look like the object it lost.
            if track.misses and d2 > APPEARANCE_FREE_D2 and look > self.config.appearance_gate:
                return None
        if track.lost and (feature is None or track.feature is None or look > self.config.appearance_gate):
            return None  # lost: only a detection that also looks like it brings it back
        return 0.5 * d2 + math.log(spread) + LABEL_SWITCH_NLL * penalty + self.config.appearance_weight * look

    def update(
        self, detections: list[Detection], ts: float, features: list[np.ndarray | None] | None = None
    ) -> TrackUpdate:
        """``features``: one ``appearance.describe`` per detection, or None (position only)."""
        features = features if features is not None else [None] * len(detections)
        dt = 0.0 if self._last_ts is None else max(0.0, ts - self._last_ts)
        self._last_ts = ts
        if dt > 0:
            # Inferences skipped by the motion gate: predictions made over a longer gap than usual are less
            # sure (a velocity learnt from a few frames is rough), so the gate grows with the extra time.
            self._step = min(self._step, dt)
        self._skip_slack = self.config.skip_speed * max(0.0, dt - self._step)
        for track in self.tracks:
            track.kf.predict(dt)
            track.state_ts = ts
        pairs = []
        for ti, track in enumerate(self.tracks):
            label = track.label  # a majority vote: computed once per track, not once per pair
            for di, det in enumerate(detections):
                cost = self._cost(track, det, label, features[di])
                if cost is not None:
                    pairs.append((cost, ti, di))
        used_t: set[int] = set()
        used_d: set[int] = set()
        started: list[Track] = []
        turned: set[int] = set()
        newcomer_since: dict[int, float] = {}
        for _, ti, di in sorted(pairs):  # greedy: cheapest pairs first
            if ti in used_t or di in used_d:
                continue
            used_t.add(ti)
            used_d.add(di)
            track, det = self.tracks[ti], detections[di]
            track.kf.correct((det.box[0] + det.box[2]) / 2, (det.box[1] + det.box[3]) / 2)
            track.box, track.score, track.last_ts = det.box, det.score, ts
            track.best_score = max(track.best_score, det.score)
            track.labels[det.label] += 1
            track.feature = appearance.blend(track.feature, features[di], 0.3)
            track.hits += 1
            track.misses = 0
            track.lost = False
            left_at = self._turned_round(track, ts) if track.confirmed else None
            if left_at is not None:
                # It left when last at the border going out; the detection is the newcomer's, seen in
                # the blob since then: it starts a track of its own.
                turned.add(ti)
                used_d.discard(di)
                track.last_ts = newcomer_since[di] = left_at
                continue
            if not track.confirmed and track.hits >= self.config.min_hits:
                track.confirmed = True
                started.append(track)
        ended: list[Track] = []
        kept: list[Track] = []
        seen = [self.tracks[ti] for ti in used_t - turned]
        self._cover([t for ti, t in enumerate(self.tracks) if ti not in used_t], seen, ts)
        for ti, track in enumerate(self.tracks):
            if ti in turned:
                track.left_frame = True  # last seen at the border, going out
                ended.append(track)
                continue
            if ti not in used_t:
                track.misses += 1
                track.left_frame = self._leaving(track)
                track.lost = track.confirmed and track.misses > self.config.max_age
                # Only a track with colours can be recognised once lost; without, it ends at max_age.
                lost_for = self.config.max_lost if track.feature is not None else 0
                limit = self.config.max_age + lost_for if track.confirmed else 1
                if track.left_frame or track.misses > limit:
                    if track.confirmed:
                        ended.append(track)
                    continue
            kept.append(track)
        for di, det in enumerate(detections):
            if di in used_d:
                continue
            cx, cy = (det.box[0] + det.box[2]) / 2, (det.box[1] + det.box[3]) / 2
            track = Track(
                next(self._ids),
                det.box,
                det.score,
                newcomer_since.get(di, ts),
                ts,
                Kalman(cx, cy, accel=self.config.process_noise),
                best_score=det.score,
                state_ts=ts,
                first_box=det.box,
            )
            track.labels[det.label] += 1
            track.feature = features[di]
            if self.config.min_hits <= 1:
                track.confirmed = True
                started.append(track)
            kept.append(track)
        for track in list(started):
            twin = self._twin(track, kept)
            if twin is not None:
                twin.take_over(track)
                started.remove(track)
                kept.remove(track)
        self.tracks = kept
        return TrackUpdate(self.active(), started, ended)

    def active(self) -> list[Track]:
        """Confirmed tracks the rules follow: lost ones wait unseen (their last position stays theirs)."""
        return [t for t in self.tracks if t.confirmed and not t.lost]

    def _twin(self, young: Track, tracks: list[Track]) -> Track | None:
        """The confirmed track that lost the object ``young`` (confirmed just now) is: same label and
        colours, missed for ``TWIN_MIN_MISSES`` inferences, within reach of its prediction (``max_distance``,
        growing by ``skip_speed`` per second since it was last seen). The object came back outside the
        association gate (after an occlusion, or ahead of a lagging prediction) and started a new track;
        without this it would be a second object start and a second zone entry."""
        if young.feature is None:
            return None
        best, best_d = None, float("inf")
        for old in tracks:
            if (
                not old.confirmed
                or old.misses < TWIN_MIN_MISSES
                or old.label != young.label
                or appearance.distance(old.feature, young.feature) > self.config.appearance_gate
            ):
                continue
            d = math.dist(old.center, young.center)
            reach = self.config.max_distance + self.config.skip_speed * (young.last_ts - old.last_ts)
            if d <= reach and d < best_d:
                best, best_d = old, d
        return best

    def _leaving(self, track: Track) -> bool:
        """Undetected at the frame border and moving out of it (or predicted outside): it has left."""
        margin = self.config.exit_margin
        if margin <= 0:
            return False
        (cx, cy), (vx, vy) = track.center, track.velocity
        if not (0.0 <= cx <= 1.0 and 0.0 <= cy <= 1.0):
            return True
        x1, y1, x2, y2 = track.box
        return (
            (x1 <= margin and vx < 0)
            or (x2 >= 1.0 - margin and vx > 0)
            or (y1 <= margin and vy < 0)
            or (y2 >= 1.0 - margin and vy > 0)
        )

    def _cover(self, unseen: list[Track], seen: list[Track], ts: float) -> None:
        """Marks unseen tracks predicted inside the box of a seen track of their label as still there
        (``covered_ts``): two people walking side by side are one blob to a coarse detector, so one of
        them goes undetected until they part or leave together."""
        for track in unseen:
            if not track.confirmed:
                continue
            cx, cy = track.center
            for other in seen:
                x1, y1, x2, y2 = other.box
                if other.label == track.label and x1 <= cx <= x2 and y1 <= cy <= y2:
                    track.covered_ts = ts
                    break

    def _turned_round(self, track: Track, ts: float) -> float | None:
        """When it was last at the frame border going out, if it has turned round there since (it was
        just updated with a detection at ``ts``). One object walking out meets another walking in there;
        the detector sees one blob, and the track that was leaving would follow the newcomer back in.
        Also records when it reaches the border going out."""
        margin = self.config.exit_margin
        if margin <= 0:
            return None
        x1, y1, x2, y2 = track.box
        v, centre = track.velocity, track.center
        fx1, fy1, fx2, fy2 = track.first_box or track.box
        first = ((fx1 + fx2) / 2, (fy1 + fy2) / 2)
        for axis, sign, at_border in (
            (0, -1, x1 <= margin),
            (0, 1, x2 >= 1.0 - margin),
            (1, -1, y1 <= margin),
            (1, 1, y2 >= 1.0 - margin),
        ):
            walked_out = (centre[axis] - first[axis]) * sign >= TURN_TRAVEL
            if at_border and walked_out and v[axis] * sign > 0:
                track.border = (axis, sign, ts)
        if track.border is None or ts - track.border[2] > TURN_WINDOW_S:
            return None
        axis, sign, at = track.border
        return at if v[axis] * sign < -TURN_SPEED else None

    def flush(self) -> list[Track]:
        """End every confirmed track (source ended, shutdown)."""
        ended = [t for t in self.tracks if t.confirmed]
        self.tracks = []
        return ended
