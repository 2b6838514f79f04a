"""The one template mechanism of generated files: ``@@NAME@@`` placeholders in package data.

Used by the HLS project (``codegen/templates/``) and the deployment bundle's boot files and
README. A placeholder without a value is an error, never left in the output.
"""
from __future__ import annotations

import re
from importlib import resources


def read_template(package: str, *parts: str) -> str:
    """The text of ``templates/<parts...>`` shipped inside ``package``."""
    return resources.files(package).joinpath("templates", *parts).read_text(encoding="utf-8")


def fill(text: str, values: dict[str, object]) -> str:
    """Replace every ``@@NAME@@`` in ``text`` by ``str(values[NAME])``; raises ``KeyError``
    naming a placeholder that has no value."""
    def sub(m):
        key = m.group(1)
        if key not in values:
            raise KeyError(f"template placeholder @@{key}@@ has no value")
        return str(values[key])

    return re.sub(r"@@([A-Z_0-9]+)@@", sub, text)
