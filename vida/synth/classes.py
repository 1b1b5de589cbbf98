"""The synthetic action classes: what each looks like, sounds like, and is tagged and
captioned as.

Designed so that both modalities matter:

* looks alike, sounds different: ``spinning+fan`` / ``drilling`` (the same rotating
  bar; a low hum or a high whine whose pitch follows the speed).  Nothing visible
  tells them apart, so real audio helps and generated audio cannot;
* a small visual cue decides the sound: ``hammering`` and ``striking+metal`` are the
  same strike, on a small wooden (brown) or metal (grey-blue) block, and thud or
  clang; ``bouncing+ball`` and ``dropping+metal`` the same bouncing object, landing
  on a wooden or a metal plate.  The block or plate is a few pixels of each frame,
  so a classifier with few labels may miss it, while a generator that saw many clips
  with their sound can learn that this cue predicts a clang: where generated audio
  can help;
* looks different, sounds alike: ``hammering`` thuds like ``bouncing+ball``;
  ``blowing`` hisses like ``sawing``;
* ``tapping`` and the others are separable by both.

Reference tags are AudioSet label names and depend only on the *sound* (what AST
would hear); captions depend only on the *visual* (what BLIP would see), so
look-alike classes get look-alike captions and sound-alike classes the same tags.
"""

from __future__ import annotations

from dataclasses import dataclass

from vida.errors import UsageError


@dataclass(frozen=True)
class SynthClass:
    name: str  # MiT-style, '+' for spaces
    visual: str  # motion pattern drawn by render.draw_frame
    sound: str  # sound pattern made by render.make_audio
    cue: str | None = None  # a small visual detail that goes with the sound (the material)


CLASSES: tuple[SynthClass, ...] = (
    SynthClass("bouncing+ball", "bounce", "thud", "wood"),
    SynthClass("dropping+metal", "bounce", "clang", "metal"),
    SynthClass("spinning+fan", "spin", "hum"),
    SynthClass("drilling", "spin", "whine"),
    SynthClass("hammering", "strike", "thud", "wood"),
    SynthClass("striking+metal", "strike", "clang", "metal"),
    SynthClass("sawing", "slide", "hiss"),
    SynthClass("blowing", "breathe", "hiss"),
    SynthClass("tapping", "tap", "tick"),
)

# What an AudioSet tagger hears: a function of the sound only (best first).
SOUND_TAGS: dict[str, tuple[str, ...]] = {
    "thud": ("Thump, thud", "Knock", "Bouncing", "Hammer", "Tap"),
    "clang": ("Clang", "Ding", "Bell", "Tubular bells", "Jingle bell"),
    "hum": ("Hum", "Mechanical fan", "Mains hum", "Whir", "Buzz"),
    "whine": ("Drill", "Whir", "Power tool", "Dental drill, dentist's drill", "Buzz"),
    "hiss": ("White noise", "Rub", "Whoosh, swoosh, swish", "Scrape", "Wind"),
    "tick": ("Tick", "Tap", "Wood block", "Knock", "Clapping"),
}

# What a captioner sees: a function of the visual only; {color} is the object's colour.
VISUAL_CAPTIONS: dict[str, tuple[str, ...]] = {
    "bounce": ("a {color} ball bouncing on the floor", "a {color} ball in the air",
               "a small {color} ball hitting the ground"),
    "bounce:wood": ("a {color} ball bouncing on a wooden floor", "a {color} ball in the air",
                    "a small {color} ball hitting a brown board"),
    "bounce:metal": ("a {color} ball bouncing on a metal plate", "a {color} ball in the air",
                     "a small {color} ball hitting a grey plate"),
    "spin": ("a {color} blade spinning in the middle", "a {color} bar rotating",
             "a spinning {color} propeller"),
    "strike": ("a {color} hammer striking a block", "a {color} stick swinging down",
               "someone hitting a block with a {color} hammer"),
    "strike:wood": ("a {color} hammer striking a wooden block", "a {color} stick swinging down",
                    "someone hitting a brown block with a {color} hammer"),
    "strike:metal": ("a {color} hammer striking a metal block", "a {color} stick swinging down",
                     "someone hitting a grey block with a {color} hammer"),
    "slide": ("a {color} block sliding back and forth", "a {color} saw moving sideways",
              "a {color} plank being cut"),
    "breathe": ("a {color} balloon growing", "a {color} circle getting bigger and smaller",
                "a {color} bubble being blown"),
    "tap": ("two {color} blocks touching", "two {color} squares tapping together",
            "a pair of {color} blocks meeting"),
}

# Labels any tagger sometimes gives, whatever the scene (background, microphone).
GENERIC_TAGS = ("Noise", "Static", "Environmental noise", "Field recording", "Silence")

COLORS = {
    "red": (220, 40, 40), "green": (40, 200, 60), "blue": (50, 80, 230),
    "yellow": (230, 210, 40), "white": (235, 235, 235), "orange": (240, 140, 30),
    "purple": (150, 60, 200), "cyan": (40, 210, 220),
}


def classes(k: int) -> tuple[SynthClass, ...]:
    if not 2 <= k <= len(CLASSES):
        raise UsageError(f"--classes must be between 2 and {len(CLASSES)}, got {k}")
    return CLASSES[:k]
