"""Compilation targets: descriptions (data), cross builds, QEMU runs,
instruction counts and memory fit. See docs/targets.md."""
from .descriptions import APT_PACKAGES, TARGETS, Emulator, MemoryLevel, Region, Target, get_target
from .footprint import Footprint, TargetFitError
from .profile import LayerProfile, Profile

__all__ = ["APT_PACKAGES", "TARGETS", "Emulator", "MemoryLevel", "Region", "Target", "get_target",
           "Footprint", "TargetFitError", "LayerProfile", "Profile"]
