"""Concats as channel offsets: which tensors of an offloaded function are stored in place
into a concat's tensor (views), and which parts must be copied there (docs/ENGINE.md,
"Concat").

A concat of tensors with channel counts that are multiples of 8 is, in the engine's HWC
layout of 8-channel words, channel groups ``[g0, g0 + g)`` of one tensor: a producer that
STOREs with ``ST_G`` = the concat's groups and ``ST_G0`` = its offset writes its part in
place, and a consumer LOAD_INPUTs a part with ``LI_G0``. Every tensor of such a *root*
shares one int8 scale (the concat's calibrated range).

A part is stored in place (*aliased*) when it is produced inside the function by a layer
that requantizes (a conv or fire chain without a Clip(0, c) clamp, or a standalone
average pool, whose output scale the compiler may choose) or is itself a concat, is not a function output (the host reads
outputs as whole tensors) and has no other slot already. Otherwise (a function input, a
standalone max pool's output, which keeps its input's scale, a clamped conv, a part
needed at two places) a *copy* layer writes it into its slot: a 1x1 max pool (the same
scale) or a 1x1 average pool that requantizes (``lower.copy_layer``).

Concats are planned from the last to the first, so a concat that is a part of a later one
becomes a view of it (nesting), and a concat whose parts already sit in a root joins that
root when they are consecutive there (DenseNet's ``concat(x0, f1, ..., fk)`` of every
layer: each is a prefix of the block's last concat).
"""
from __future__ import annotations

from dataclasses import dataclass, field

from ..engine.dae_config import PE_IC


@dataclass
class PlanItem:
    """One composite of the function, in execution order: ``kind`` "concat" (``srcs`` its
    parts), "aliasable" (a layer whose output scale is free) or "fixed" (any other layer)."""

    kind: str
    srcs: list[str]
    dst: str


@dataclass
class ConcatPlan:
    """``views``: tensor id -> (root id, channel offset), roots are never views;
    ``copies``: copy tensor id -> (source id, index of the concat item it runs at)."""

    views: dict[str, tuple[str, int]] = field(default_factory=dict)
    copies: dict[str, tuple[str, int]] = field(default_factory=dict)

    def root_of(self, t: str) -> tuple[str, int]:
        return self.views.get(t, (t, 0))

    def copies_at(self, index: int) -> list[tuple[str, str]]:
        """(source, copy id) of the copies that run at item ``index``, in id order."""
        return sorted((src, dst) for dst, (src, at) in self.copies.items() if at == index)


def plan_concats(items: list[PlanItem], channels: dict[str, int], outputs: list[str]
                 ) -> ConcatPlan:
    """Place every concat part (see the module docstring)."""
    plan = ConcatPlan()
    kind_of = {it.dst: it.kind for it in items}
    leaves: dict[str, list[tuple[int, int, str]]] = {}  # root -> (lo, hi, tensor) written

    def aliasable(t: str) -> bool:
        return kind_of.get(t) in ("aliasable", "concat") and t not in outputs \
            and t not in plan.views

    def leaf_at(root: str, lo: int, hi: int) -> str | None:
        for a, b, t in leaves.get(root, []):
            if a < hi and lo < b:
                return t if (a, b) == (lo, hi) else "<overlap>"
        return None

    def fits(t: str, slot: tuple[str, int]) -> bool:
        """``t`` is (or can be put, or copied) at ``slot``."""
        if plan.views.get(t) == slot:
            return True
        lo = slot[1]
        if kind_of.get(t) == "concat" and aliasable(t):
            return True
        held = leaf_at(slot[0], lo, lo + channels[t])
        return held is None or plan.copies.get(held, (None,))[0] == t

    for index in reversed(range(len(items))):
        it = items[index]
        if it.kind != "concat":
            continue
        offs, o = [], 0
        for s in it.srcs:
            offs.append(o)
            o += channels[s]
        if it.dst in plan.views:
            root, base = plan.views[it.dst]
        else:
            root, base = it.dst, 0
            for s, off in zip(it.srcs, offs):  # join the root a part already sits in
                if s in plan.views and it.dst not in outputs:
                    r, o = plan.views[s]
                    cand = (r, o - off)
                    if (o - off >= 0 and o - off + channels[it.dst] <= channels[r]
                            and all(fits(p, (r, cand[1] + q)) for p, q in zip(it.srcs, offs))):
                        root, base = cand
                        plan.views[it.dst] = cand
                    break
        for k, (s, off) in enumerate(zip(it.srcs, offs)):
            slot = (root, base + off)
            lo, hi = slot[1], slot[1] + channels[s]
            if plan.views.get(s) == slot:
                continue
            if aliasable(s) and (kind_of[s] == "concat" or leaf_at(root, lo, hi) is None):
                plan.views[s] = slot
                if kind_of[s] != "concat":
                    leaves.setdefault(root, []).append((lo, hi, s))
                continue
            held = leaf_at(root, lo, hi)
            if held is not None and plan.copies.get(held, (None,))[0] == s:
                # the same copy serves an earlier concat: it must run there
                plan.copies[held] = (s, min(plan.copies[held][1], index))
                continue
            if held is not None:
                raise ValueError(f"concat {it.dst}: channels [{lo}, {hi}) of {root} are "
                                 f"already written by {held}")
            dst = f"{it.dst}_p{k}"
            plan.views[dst] = slot
            plan.copies[dst] = (s, index)
            leaves.setdefault(root, []).append((lo, hi, dst))
    for t, (_, off) in plan.views.items():
        if off % PE_IC:
            raise ValueError(f"{t}: channel offset {off} is not a multiple of {PE_IC}")
    return plan
