"""Modality ablation at evaluation (`avbench run --ablate audio|video`): silence the audio or blank the
frames of every sample before the model sees them, to measure how much a model uses each modality.

The ablation acts on `DecodedMedia`, the media every media-reading adapter receives from the runner,
so it applies to any such model without the adapter's help. It keeps the media's shape and only
removes its content:

- `audio`: the waveform becomes zeros of the same length. The model still cuts and encodes its audio
  segments (same number of audio tokens in the prompt, same prompt length), they just carry silence.
  Dropping the audio instead would change the prompt's layout as well as its content, and many models
  (Crab among them) cannot be asked a question without their audio placeholder filled.
- `video`: every frame becomes black (all-zero uint8 RGB) at the same (T, S, S, 3) shape. Black is
  defined on the decoded pixels, before any model-specific normalisation, so every model gets the same
  input; after CLIP-style normalisation it is a constant image, not a zero tensor, which is what a
  camera with its lens covered would give.

Models that read no media (the baselines) cannot be ablated: `--ablate` is an error for them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from .errors import AVBenchError
from .media import DecodedMedia

if TYPE_CHECKING:
    from .adapter import ModelAdapter

#: The values `--ablate` takes: the modality removed.
ABLATIONS: tuple[str, ...] = ("audio", "video")


def check_ablation(ablate: str | None, model: "ModelAdapter") -> None:
    """Raise `AVBenchError` unless `ablate` is None or a modality `model` reads."""
    if ablate is None:
        return
    if ablate not in ABLATIONS:
        raise AVBenchError(f"--ablate takes {' or '.join(ABLATIONS)}, got {ablate!r}")
    spec = model.media_spec
    if spec is None:
        raise AVBenchError(f"--ablate {ablate}: model {model.name!r} reads no media (it answers from the prompt "
                           "alone), so there is nothing to ablate; use a model that reads audio and video, e.g. crab")
    reads = spec.need_audio if ablate == "audio" else spec.need_video
    if not reads:
        raise AVBenchError(f"--ablate {ablate}: model {model.name!r} does not read {ablate}, so ablating it changes nothing")


def ablate_media(media: DecodedMedia, ablate: str | None) -> DecodedMedia:
    """`media` with the `ablate` modality silenced (audio) or blanked (video); unchanged for None.

    Returns a new `DecodedMedia`; the other modality is passed through as is (not copied)."""
    if ablate is None:
        return media
    if ablate == "audio":
        audio = None if media.audio is None else np.zeros_like(media.audio)
        return DecodedMedia(frames=media.frames, audio=audio)
    if ablate == "video":
        frames = None if media.frames is None else np.zeros_like(media.frames)
        return DecodedMedia(frames=frames, audio=media.audio)
    raise AVBenchError(f"--ablate takes {' or '.join(ABLATIONS)}, got {ablate!r}")


def ablated_label(model: str, ablate: str | None) -> str:
    """The model's name as tables show it: `crab (no audio)` under `--ablate audio`, else `crab`."""
    return model if ablate is None else f"{model} (no {ablate})"


def default_output_name(model: str, ablate: str | None) -> str:
    """Folder name under avbench-results/: an ablated run gets its own (`crab-no-audio`), so it never
    resumes into, or is refused by, the folder of the model's normal run."""
    return model if ablate is None else f"{model}-no-{ablate}"
