"""Errors the user can cause. Every one carries a single-line message that
names the node/op/file at fault and says what to do about it."""


class MicrotrainError(Exception):
    """Base class of every error microtrain raises for bad user input."""

    def __init__(self, message: str):
        # Keep messages on one line: the CLI prints them verbatim.
        super().__init__(" ".join(str(message).split()))


class ModelLoadError(MicrotrainError):
    """The model file cannot be read or is not a valid ONNX model."""


class UnsupportedOpError(MicrotrainError):
    """An operator, attribute or dtype microtrain does not implement."""


class ShapeError(MicrotrainError):
    """A shape is dynamic, inconsistent or cannot be inferred."""


class InputError(MicrotrainError):
    """Run-time inputs are missing, extra, or of the wrong shape/dtype."""


class BuildError(MicrotrainError):
    """The generated C failed to compile or run."""


def node_label(node) -> str:
    """`node 'conv1' (Conv)` — the way every message names a node."""
    return f"node '{node.name}' ({node.op})"
