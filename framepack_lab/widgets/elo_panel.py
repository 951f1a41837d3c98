"""The paper's human study as a panel: two videos shown blind, the reader picks the better one.

The paper scored its Table 2 rows by human A/B tests turned into Elo ratings (K = 32). Here the
two videos come from two toy Table 2 rows for the same held-out world, labels hidden and sides
drawn at random (:func:`framepack_lab.elo.pairs`); each answer updates the ratings
(:class:`framepack_lab.elo.EloBoard`), and a table sets their ranking beside the rankings by the
measured drift and presence (:func:`framepack_lab.elo.beside_metrics`). Imports ipywidgets when a
panel is made; Pillow for its images.
"""

from __future__ import annotations

import html
import io
import random
from dataclasses import dataclass

import numpy as np

from ..elo import K_FACTOR, SCORES, EloBoard, beside_metrics, pairs
from .common import FILMSTRIP_EVERY, _snapshot_html, filmstrip, filmstrip_caption, png_bytes, png_html

CHOICES = ("left", "right", "tie", "skip")


@dataclass(frozen=True)
class Trial:
    """One blind pair: the rows shown left and right and the world (its label and index)."""

    left: str
    right: str
    world: object
    world_index: int


def gif_bytes(video: np.ndarray, fps: int = 12, scale: int = 2) -> bytes:
    """An endlessly looping GIF of ``(T, H, W, 3)`` float frames in [0, 1], upscaled by ``scale``."""
    from PIL import Image

    v = np.repeat(np.repeat(np.clip(np.asarray(video), 0, 1), scale, axis=1), scale, axis=2)
    frames = [Image.fromarray(f) for f in (v * 255).round().astype(np.uint8)]
    buf = io.BytesIO()
    frames[0].save(buf, format="gif", save_all=True, append_images=frames[1:], duration=int(1000 / fps), loop=0)
    return buf.getvalue()


class EloPanel:
    """A blind A/B study over Table 2 rows, scored as Elo ratings (K = 32, as in the paper).

    Buttons *left is better*, *right is better*, *tie* and *skip* (or :meth:`choose` headless) judge
    the pair shown and move to the next; ratings update at once. *reveal* shows which rows the pair
    came from. The table ranks the rows by Elo beside their ranks by the measured metrics.

    Args:
        videos: ``{row name: [video (T, H, W, 3) per world]}``, at least two rows, the same number
            of worlds each (e.g. the ``videos`` of :func:`framepack_lab.table2.run` with ``keep_videos``).
        summary: the matching :func:`framepack_lab.table2.run` summary for the metric ranks, or None.
        worlds: labels of the worlds (e.g. their seeds), default ``0, 1, ...``.
        seed: draws the pairs, their sides and their worlds.
        rounds: how often every pair of rows is shown.
        k: the Elo K factor (the paper's 32).
        fps: speed of the looping videos.

    Attributes:
        board: the :class:`~framepack_lab.elo.EloBoard`; ``trials``: the blind pairs in order;
        ``current``: the pair shown (None when done); ``judged``: ``[(Trial, choice)]``;
        ``widget``: the panel (display it).
    """

    def __init__(self, videos: dict, summary=None, worlds=None, seed: int = 0, rounds: int = 1,
                 k: float = K_FACTOR, fps: int = 12):
        import ipywidgets as w

        if not isinstance(videos, dict) or len(videos) < 2:
            raise ValueError("EloPanel needs videos {row name: [video per world]} for at least two rows, e.g. "
                             "the videos of table2.run(..., keep_videos=True)")
        counts = {name: len(v) for name, v in videos.items()}
        if len(set(counts.values())) != 1 or min(counts.values()) < 1:
            raise ValueError(f"every row needs a video for each of the same worlds, got {counts} videos per row")
        n_worlds = next(iter(counts.values()))
        worlds = list(range(n_worlds)) if worlds is None else list(worlds)
        if len(worlds) != n_worlds:
            raise ValueError(f"{len(worlds)} world labels for {n_worlds} videos per row; give one label per world")
        self.videos, self.summary, self.worlds, self.fps = videos, summary, worlds, fps
        self.board = EloBoard(list(videos), k=k)
        beside_metrics(self.board, summary)  # refuses a summary without the metric columns, before display
        rng = random.Random(seed)
        self.trials = [Trial(a, b, worlds[i], i)
                       for (a, b), i in ((p, rng.randrange(n_worlds)) for p in pairs(videos, rng, rounds))]
        self.position = 0
        self.judged: list[tuple[Trial, str]] = []
        self._images: dict[tuple[str, int], tuple[bytes, bytes]] = {}

        def image(max_width):
            return w.Image(layout=w.Layout(object_fit="contain", max_width=max_width))

        self.left_video, self.right_video = image("256px"), image("256px")
        self.left_strip, self.right_strip = image("100%"), image("100%")
        self.left_label, self.right_label = w.HTML(), w.HTML()
        self.buttons = {c: w.Button(description=d, button_style=s) for c, d, s in (
            ("left", "◀ left is better", "success"), ("right", "right is better ▶", "success"),
            ("tie", "tie", ""), ("skip", "skip", ""))}
        for c, b in self.buttons.items():
            b.on_click(lambda _, c=c: self.choose(c))
        self.reveal = w.Checkbox(value=False, description="reveal the rows")
        self.reveal.observe(lambda _: self._draw(), names="value")
        self.status, self.table = w.HTML(), w.HTML()
        self.caption = w.Label(value="")
        side = lambda v, s, l: w.VBox([v, s, l], layout=w.Layout(width="49%", align_items="center"))  # noqa: E731
        self.widget = w.VBox([
            w.HBox([side(self.left_video, self.left_strip, self.left_label),
                    side(self.right_video, self.right_strip, self.right_label)]),
            self.caption,
            w.HBox([*self.buttons.values(), self.reveal]), self.status, self.table])
        self._draw()

    # ------------------------------------------------------------------------- state
    @property
    def current(self) -> Trial | None:
        """The pair shown now, or None when every pair has been judged or skipped."""
        return self.trials[self.position] if self.position < len(self.trials) else None

    def choose(self, choice: str) -> Trial:
        """Judge the pair shown: ``"left"``, ``"right"``, ``"tie"`` or ``"skip"``; returns the pair.

        The ratings update (except for a skip) and the next pair is shown. ``ValueError`` for another
        word, or when no pair is left.
        """
        if choice not in CHOICES:
            raise ValueError(f"choice must be one of {', '.join(CHOICES)}, got {choice!r}")
        trial = self.current
        if trial is None:
            raise ValueError(f"all {len(self.trials)} pairs are judged; make a new EloPanel (rounds=2 shows every "
                             "pair twice) to go on")
        if choice != "skip":
            self.board.record(trial.left, trial.right, SCORES[choice])
        self.judged.append((trial, choice))
        self.position += 1
        self._draw()
        return trial

    def ranking(self):
        """The rows ranked by Elo, with their ranks by the measured metrics beside
        (:func:`framepack_lab.elo.beside_metrics`)."""
        return beside_metrics(self.board, self.summary)

    # ------------------------------------------------------------------------- drawing
    def _media(self, name: str, world_index: int) -> tuple[bytes, bytes]:
        key = (name, world_index)
        if key not in self._images:
            v = np.asarray(self.videos[name][world_index])
            self._images[key] = (gif_bytes(v, self.fps), png_bytes(filmstrip(v), scale=1))
        return self._images[key]

    def _label(self, trial: Trial, side: str) -> str:
        name = getattr(trial, side)
        return f"<b>{html.escape(name)}</b>" if self.reveal.value else f"<i>{side}: hidden</i>"

    def _draw(self) -> None:
        t = self.current
        done = t is None
        for b in self.buttons.values():
            b.disabled = done
        if not done:
            (lg, ls), (rg, rs) = self._media(t.left, t.world_index), self._media(t.right, t.world_index)
            self.left_video.value, self.left_strip.value, self.right_video.value, self.right_strip.value = lg, ls, rg, rs
            self.left_label.value, self.right_label.value = self._label(t, "left"), self._label(t, "right")
            n = len(self.videos[t.left][t.world_index])
            self.caption.value = f"filmstrips: {filmstrip_caption(n, FILMSTRIP_EVERY)}"
        votes = sum(1 for _, c in self.judged if c != "skip")
        skipped = len(self.judged) - votes
        where = (f"pair {self.position + 1} of {len(self.trials)}, world {html.escape(str(t.world))}" if not done
                 else f"all {len(self.trials)} pairs done")
        last = ""
        if self.judged and self.reveal.value:
            (p, c) = self.judged[-1]
            last = f" · last pair: {html.escape(p.left)} (left) vs {html.escape(p.right)} (right): {c}"
        self.status.value = (f"{where} · {votes} judged, {skipped} skipped · Elo K = {self.board.k:g}, "
                             f"start {self.board.start:g}{last}")
        df = self.ranking()
        self.table.value = df.to_html(index=False, float_format=lambda v: f"{v:.3f}" if abs(v) < 10 else f"{v:.0f}",
                                      border=0)

    def snapshot(self):
        """A static copy for saved or headless notebooks (widget state is not saved): the status line,
        the pair shown (filmstrips, labels as the reveal toggle says) and the ranking table."""
        from IPython.display import HTML

        t = self.current
        pair = ""
        if t is not None:
            cells = "".join(
                f"<figure style='margin:0'>{png_html(getattr(self, side + '_strip').value, side)}"
                f"<figcaption>{self._label(t, side)}</figcaption></figure>" for side in ("left", "right"))
            pair = (f"<div style='display:flex; gap:1em'>{cells}</div>"
                    f"<small>{html.escape(self.caption.value)}</small>")
        return HTML(_snapshot_html(self.status.value, []) + pair + self.table.value)

    def _ipython_display_(self):
        from IPython.display import display

        display(self.widget)


__all__ = ["EloPanel", "Trial", "CHOICES", "gif_bytes"]
