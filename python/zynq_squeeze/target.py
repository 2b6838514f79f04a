"""The ``zynq-squeeze`` TVM target and the hook that makes ``tvm.compile`` offload.

``tvm.compile(mod, target="zynq-squeeze")`` runs ``relax.pipeline.PIPELINE_MAP["default"]``
inside ``with target:``. We wrap that entry once: the returned pass prepends the plugin's
offload passes when (and only when) the current target carries the plugin's key, so every
other target compiles exactly as before.
"""
from __future__ import annotations

import tvm
from tvm import relax
from tvm.target import Target

KEY = "zynq-squeeze"
HOST_TAG = "zynq-squeeze"
BOARD_TAG = "zynq-squeeze-arm"

# Host simulation build: x86 LLVM for the CPU part, the engine compiled for the host.
HOST_CONFIG = {"kind": "llvm", "keys": [KEY, "cpu"]}
# Board build: the Zynq-7000 ARM Cortex-A9 (hard-float ABI, NEON).
BOARD_CONFIG = {"kind": "llvm", "keys": [KEY, "arm_cpu", "cpu"],
                "mtriple": "armv7a-linux-gnueabihf", "mcpu": "cortex-a9",
                "mattr": ["+neon"], "mfloat-abi": "hard"}

_WRAPPED_ATTR = "_zynq_squeeze_wrapped"


def is_zynq_target(target: Target | None) -> bool:
    """True when ``target`` (or the current target) is one of this plugin's."""
    target = target if target is not None else Target.current(allow_none=True)
    return target is not None and KEY in list(target.keys)


def is_board_target(target: Target | None) -> bool:
    """True for the ARM board build (cross-compiled), False for host simulation."""
    target = target if target is not None else Target.current(allow_none=True)
    return target is not None and "arm_cpu" in list(target.keys) and is_zynq_target(target)


def register_targets() -> None:
    """Register the target tags (idempotent)."""
    from tvm.target.tag import register_tag

    register_tag(HOST_TAG, HOST_CONFIG, override=True)
    register_tag(BOARD_TAG, BOARD_CONFIG, override=True)


def _wrap_default_pipeline(offload_pass_factory) -> None:
    """Wrap PIPELINE_MAP['default'] so zynq-squeeze targets partition first (idempotent)."""
    pmap = relax.pipeline.PIPELINE_MAP
    orig = pmap["default"]
    if getattr(orig, _WRAPPED_ATTR, False):
        return

    def default_with_offload(*args, **kwargs):
        inner = orig(*args, **kwargs)

        @tvm.transform.module_pass(opt_level=0, name="ZynqSqueezeDefaultPipeline")
        def dispatch(mod, ctx):
            if is_zynq_target(None):
                mod = offload_pass_factory()(mod)
            return inner(mod)

        return dispatch

    setattr(default_with_offload, _WRAPPED_ATTR, True)
    default_with_offload.__wrapped__ = orig
    pmap["default"] = default_with_offload


def install(offload_pass_factory) -> None:
    """Register target tags and the pipeline hook."""
    register_targets()
    _wrap_default_pipeline(offload_pass_factory)
