"""The embedded default: synthetic worlds written in each dataset's real layout and formats.

Scenes of coloured shapes (`scenes`) feed one writer per task (`vqa`, ...); `cache` keeps each
written world under a hash of its spec so it is built once.
"""

from harness.data.synthetic.cache import WORLD_VERSION, ensure_world
from harness.data.synthetic.vqa import VqaWorldSpec, vqa_world_spec, write_vqa_world

__all__ = ["WORLD_VERSION", "VqaWorldSpec", "ensure_world", "vqa_world_spec", "write_vqa_world"]
